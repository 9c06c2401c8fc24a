#!/usr/bin/env bash
# coffer-backup.sh - the production guide's backup job: take a raft
# snapshot, verify it with `snapshot inspect`, and only then delete the
# snapshots older than the retention (7 days by default). Run it from the
# systemd timer (deploy/systemd/coffer-backup.timer, every 6 hours) or cron.
#
# A snapshot that fails verification is deleted and the old ones are kept:
# a broken backup never rotates a good one away. At least the newest
# COFFER_BACKUP_MIN_KEEP verified snapshots always stay, whatever their age.
#
# Environment (all optional):
#   VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT   the server and a token allowed to
#                                 read sys/storage/raft/snapshot
#   COFFER_BACKUP_DIR             where snapshots go (/vault/backups)
#   COFFER_BACKUP_RETENTION_DAYS  age after which snapshots are deleted (7)
#   COFFER_BACKUP_MIN_KEEP        newest snapshots kept regardless of age (3)
#   COFFER_BACKUP_TEXTFILE        a node_exporter textfile to write the
#                                 result to (coffer_backup_* metrics)
#   COFFER                        the coffer binary (coffer on PATH)
#
# Exit status: 0 done; 1 bad setting or another run holds the lock;
# 2 snapshot failed; 3 verification failed.
set -euo pipefail

BACKUP_DIR=${COFFER_BACKUP_DIR:-/vault/backups}
RETENTION_DAYS=${COFFER_BACKUP_RETENTION_DAYS:-7}
MIN_KEEP=${COFFER_BACKUP_MIN_KEEP:-3}
COFFER=${COFFER:-coffer}
PREFIX=coffer-snapshot-

log() { printf '%s coffer-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

case $RETENTION_DAYS in ''|*[!0-9]*) log "COFFER_BACKUP_RETENTION_DAYS must be a whole number of days"; exit 1;; esac
case $MIN_KEEP in ''|*[!0-9]*) log "COFFER_BACKUP_MIN_KEEP must be a whole number"; exit 1;; esac

textfile() { # status, size
	[ -n "${COFFER_BACKUP_TEXTFILE:-}" ] || return 0
	local tmp="$COFFER_BACKUP_TEXTFILE.$$"
	{
		echo "# HELP coffer_backup_last_run_timestamp_seconds When the backup job last ran."
		echo "# TYPE coffer_backup_last_run_timestamp_seconds gauge"
		echo "coffer_backup_last_run_timestamp_seconds $(date +%s)"
		echo "# HELP coffer_backup_last_status Exit status of the last run (0: a verified snapshot)."
		echo "# TYPE coffer_backup_last_status gauge"
		echo "coffer_backup_last_status $1"
		if [ "$1" = 0 ]; then
			echo "# HELP coffer_backup_last_success_timestamp_seconds When the last verified snapshot was taken."
			echo "# TYPE coffer_backup_last_success_timestamp_seconds gauge"
			echo "coffer_backup_last_success_timestamp_seconds $(date +%s)"
			echo "# HELP coffer_backup_last_size_bytes Size of the last verified snapshot."
			echo "# TYPE coffer_backup_last_size_bytes gauge"
			echo "coffer_backup_last_size_bytes $2"
		fi
	} >"$tmp" && mv -f "$tmp" "$COFFER_BACKUP_TEXTFILE"
}

umask 077
mkdir -p "$BACKUP_DIR"
exec 9>"$BACKUP_DIR/.lock"
if ! flock -n 9; then
	log "another backup is running (lock $BACKUP_DIR/.lock)"
	exit 1
fi

ts=$(date -u +%Y%m%d-%H%M%S)
final="$BACKUP_DIR/$PREFIX$ts.snap"
partial="$BACKUP_DIR/.$PREFIX$ts.snap.partial"
trap 'rm -f "$partial"' EXIT

if ! "$COFFER" operator raft snapshot save "$partial"; then
	log "snapshot save failed; old snapshots kept"
	textfile 2 0
	exit 2
fi
if [ ! -s "$partial" ] || ! "$COFFER" operator raft snapshot inspect "$partial" >/dev/null; then
	log "snapshot $final failed verification (snapshot inspect); deleted, old snapshots kept"
	textfile 3 0
	exit 3
fi
size=$(stat -c %s "$partial")
(cd "$BACKUP_DIR" && sha256sum "$(basename "$partial")" | sed "s|\.$PREFIX$ts\.snap\.partial|$PREFIX$ts.snap|" >"$PREFIX$ts.snap.sha256")
sync "$partial" 2>/dev/null || true
mv -f "$partial" "$final"
log "snapshot $final ($size bytes) verified"

# rotation: only now that a new snapshot is verified. Newest first; the
# first MIN_KEEP always stay; the rest go once older than the retention.
mapfile -t snaps < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name "$PREFIX*.snap" -printf '%T@ %p\n' |
	sort -rn | cut -d' ' -f2-)
now=$(date +%s)
limit=$((RETENTION_DAYS * 86400))
i=0
for s in "${snaps[@]}"; do
	i=$((i + 1))
	[ "$i" -le "$MIN_KEEP" ] && continue
	[ "$s" = "$final" ] && continue
	age=$((now - $(stat -c %Y "$s")))
	if [ "$age" -gt "$limit" ]; then
		rm -f -- "$s" "$s.sha256"
		log "deleted $s (older than $RETENTION_DAYS days)"
	fi
done
textfile 0 "$size"
