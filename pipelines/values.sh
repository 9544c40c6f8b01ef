# values.sh: sourced by the pipelines' summarize.sh and report.sh. A value that could not be
# computed (a missing or unreadable input, a race with another run) must fail the step with one
# line, never leave a blank in summary.json or report.md that a reader takes for a result.

# blank_keys: the keys of the JSON lines on stdin that have no value ("key": , or "key": at the
# end of a line, or an empty slot in an array), separated by spaces
blank_keys() {
    awk '/"[^"]+": *,?$/ || /\[ *,|, *\]|, *,/ { match($0, /"[^"]+"/); printf "%s%s", (n++ ? " " : ""), substr($0, RSTART, RLENGTH) }'
}

# The entk programs' own error lines go to $VALUES_ERR (made here), so that a failed step says one
# line: its own, with the first of theirs as the reason.
VALUES_ERR=$(mktemp)
trap 'rm -f "$VALUES_ERR"' EXIT

# emit_json WHO JSON: prints JSON if every value is there, else fails naming the blank keys
emit_json() {
    local bad why
    bad=$(blank_keys <<<"$2")
    why=$(grep -m1 . "$VALUES_ERR" || echo "inputs missing or unreadable")
    [ -z "$bad" ] || { echo "$1: error: no value for $bad ($why)" >&2; exit 1; }
    printf '%s\n' "$2"
}

# need_values WHO FILE KEY...: fails unless FILE (a summary.json) has a value for every KEY
need_values() {
    local who=$1 file=$2 k v missing=""
    shift 2
    [ -s "$file" ] || { echo "$who: error: $file is missing or empty" >&2; exit 1; }
    for k in "$@"; do
        v=$(sed -n "s/^  \"$k\": \(.*\)$/\1/p" "$file" | sed 's/,$//')
        [ -n "$v" ] || missing="$missing $k"
    done
    [ -z "$missing" ] || { echo "$who: error: $file has no value for$missing" >&2; exit 1; }
}
