#!/usr/bin/env bash
# Record the cgroup v2 files of a real cgroup into DEST (default: ./recorded), as root.
# MOUNT is a cgroup2 mount (the unified hierarchy of a hybrid host, /sys/fs/cgroup/unified, or
# /sys/fs/cgroup on a v2 host). It copies the mount's root files, then makes a child cgroup
# hatoba/<id>, enables whatever controllers the root offers, moves a busy shell (then a sleep)
# into it, copies every readable file of the child, kills the process and records cgroup.events
# again (populated 0). Everything it makes is removed again, also on error.
set -u
MOUNT=${MOUNT:-/sys/fs/cgroup/unified}
DEST=${DEST:-$(dirname "$0")/recorded}
ID=3f0c1b9e2d4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e
[ "$(stat -f -c %T "$MOUNT")" = cgroup2fs ] || { echo "$MOUNT is not a cgroup2 mount" >&2; exit 1; }
parent="$MOUNT/hatoba-record-$$"
child="$parent/$ID"
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -d "$child" ] && rmdir "$child"
  [ -d "$parent" ] && rmdir "$parent"
}
trap cleanup EXIT
copy() {  # copy every readable regular file of $1 into $2
  mkdir -p "$2"
  for f in "$1"/*; do
    [ -f "$f" ] || continue
    cat "$f" > "$2/$(basename "$f")" 2>/dev/null || rm -f "$2/$(basename "$f")"
  done
}
rm -rf "$DEST"
copy "$MOUNT" "$DEST"
mkdir "$parent"
for c in $(cat "$MOUNT/cgroup.controllers"); do echo "+$c" > "$parent/cgroup.subtree_control" 2>/dev/null; done
mkdir "$child"
sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec sleep 60' &
pid=$!
echo "$pid" > "$child/cgroup.procs"
sleep 3
copy "$child" "$DEST/hatoba/$ID"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
sleep 0.2
cat "$child/cgroup.events" > "$DEST/hatoba/$ID/cgroup.events.after-exit"
# the pid and timing dependent files are not part of the fixture
: > "$DEST/hatoba/$ID/cgroup.procs"; : > "$DEST/hatoba/$ID/cgroup.threads"; : > "$DEST/cgroup.procs"; : > "$DEST/cgroup.threads"
echo "recorded $MOUNT (kernel $(uname -r)) into $DEST"
