#!/usr/bin/env bash
# Checks that every `{{#include ...}}` in the book points at code that exists.
#
# mdbook does not fail on a missing anchor (it silently includes nothing) and only logs a missing file, so a
# renamed function would quietly empty a code block. This check fails instead, naming the chapter and the include.
# Includes must use anchors (`file.rs:name`, with `// ANCHOR: name` and `// ANCHOR_END: name` in the file), never
# line numbers, which drift as soon as the code above them changes.
set -euo pipefail
cd "$(dirname "$0")/.."

errors=0
checked=0
fail() {
  printf 'check-book: %s\n' "$*" >&2
  errors=$((errors + 1))
}

while IFS= read -r match; do
  chapter=${match%%:*}
  rest=${match#*:}
  line=${rest%%:*}
  link=${rest#*:}
  link="{{${link#*\{\{}" # drop the character matched before the braces
  # {{#include ../../api/src/status.rs:api_error}} -> path and anchor
  target=$(sed -E 's/^\{\{#(include|rustdoc_include) +([^ }]+) *\}\}$/\2/' <<<"$link")
  path=${target%%:*}
  anchor=""
  [ "$target" != "$path" ] && anchor=${target#*:}
  file=$(realpath -m --relative-to=. "$(dirname "$chapter")/$path")
  checked=$((checked + 1))
  where="$chapter:$line: $link"
  if [ ! -f "$file" ]; then
    fail "$where: no file $file"
    continue
  fi
  case "$anchor" in
    "") ;; # the whole file
    *[!a-z0-9_-]*) fail "$where: include by anchor name, not by line numbers" ;;
    [0-9]*) fail "$where: include by anchor name, not by line numbers" ;;
    *)
      if ! grep -qE "ANCHOR: *$anchor\b" "$file"; then
        fail "$where: no '// ANCHOR: $anchor' in $file"
      elif ! grep -qE "ANCHOR_END: *$anchor\b" "$file"; then
        fail "$where: no '// ANCHOR_END: $anchor' in $file"
      elif [ -z "$(sed -n "/ANCHOR: *$anchor\b/,/ANCHOR_END: *$anchor\b/p" "$file" | grep -v ANCHOR | tr -d '[:space:]')" ]; then
        fail "$where: anchor '$anchor' in $file is empty"
      fi
      ;;
  esac
# `\{{#include ...}}` is mdbook's escape for showing the syntax itself; it is not an include.
done < <(grep -rnoE '(^|[^\\])\{\{#(include|rustdoc_include) [^}]+\}\}' book/src --include='*.md' || true)

if [ "$errors" -gt 0 ]; then
  echo "check-book: $errors of $checked includes are broken" >&2
  exit 1
fi
echo "check-book: all $checked includes point at existing code"
