//! protobuf (to be written)
