#!/usr/bin/env bash
# Slurm EpilogSlurmctld: withdraw the finished Slurm job from the fabric controller.
#
# Runs `fabricctl job delete`, which removes every rule placed for the job. A
# job the controller does not know (never declared: one node, failed open) is
# not an error. Exit 0 when deleted or unknown or failed open; 1 on a failure
# with FABRIC_STRICT=1; 2 when not run by Slurm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=fabric-slurm-lib.sh
. "$here/fabric-slurm-lib.sh"

main() {
    fabric_load_settings
    local name output status=0
    name=$(fabric_job_name)
    output=$("$FABRIC_FABRICCTL" job delete "$name" 2>&1) || status=$?
    if [ "$status" -eq 0 ]; then
        fabric_log "$output"
        return 0
    fi
    case "$output" in
        "fabricctl: NOT_FOUND:"*)
            fabric_log "job $name was not declared: nothing to delete"
            return 0
            ;;
    esac
    fabric_fail "job $name: fabricctl job delete failed (exit $status): $output"
}

main "$@"
