#!/usr/bin/env bash
# litter.sh DIR: removes the temporary files NAME.tmp.PID under DIR whose writer is no longer
# running (a run killed with -9 leaves them; entk writes every output to such a name and renames
# it). A file whose PID is alive is kept: it may be a concurrent run's write in progress.
[ -d "$1" ] || exit 0
find "$1" -type f -name '*.tmp.*' -print0 | while IFS= read -r -d '' f; do
    pid=${f##*.tmp.}
    [[ $pid =~ ^[0-9]+$ ]] || continue
    # gone, or a zombie (killed, not yet reaped): its write will never finish
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] || rm -f -- "$f"
done
