//! openapi (to be written)
