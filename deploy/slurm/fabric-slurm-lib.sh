# Shared by fabric-job-prolog.sh and fabric-job-epilog.sh (sourced, not run).
#
# Settings come from the environment, else from the defaults file
# ($FABRIC_SLURM_DEFAULTS, default /etc/fabric/slurm-jobs.conf: KEY=VALUE
# lines, '#' comments), else from the built-in defaults below. The file is
# parsed, never sourced: a line there cannot run commands.

FABRIC_SLURM_DEFAULTS=${FABRIC_SLURM_DEFAULTS:-/etc/fabric/slurm-jobs.conf}
_FABRIC_KEYS="FABRIC_FABRICCTL FABRIC_TARGET FABRIC_HOSTS_FILE FABRIC_JOB_PREFIX
FABRIC_JOB_PATTERN FABRIC_JOB_PROTO FABRIC_JOB_PORTS FABRIC_JOB_DEMAND_MBPS
FABRIC_JOB_PRIORITY FABRIC_MIN_NODES FABRIC_STRICT"

fabric_log() {
    printf 'fabric-slurm: %s\n' "$*" >&2
}

# fabric_fail MESSAGE: report a failure. Fail open unless FABRIC_STRICT=1:
# the Slurm job then runs with ordinary placement instead of being held.
fabric_fail() {
    fabric_log "$*"
    if [ "${FABRIC_STRICT}" = "1" ]; then
        exit 1
    fi
    fabric_log "continuing without a declared job (set FABRIC_STRICT=1 to fail the job instead)"
    exit 0
}

fabric_load_settings() {
    local line key value
    if [ -f "$FABRIC_SLURM_DEFAULTS" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line=${line%%#*}
            line=$(printf '%s' "$line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
            [ -z "$line" ] && continue
            key=${line%%=*}
            value=${line#*=}
            case " $(echo $_FABRIC_KEYS) " in
                *" $key "*) ;;
                *) FABRIC_STRICT=${FABRIC_STRICT:-0}
                   fabric_fail "$FABRIC_SLURM_DEFAULTS: unknown setting '$key'" ;;
            esac
            # The environment wins over the file.
            if [ -z "${!key+set}" ]; then
                printf -v "$key" '%s' "$value"
            fi
        done < "$FABRIC_SLURM_DEFAULTS"
    fi
    FABRIC_FABRICCTL=${FABRIC_FABRICCTL:-fabricctl}
    FABRIC_JOB_PREFIX=${FABRIC_JOB_PREFIX:-slurm-}
    FABRIC_JOB_PATTERN=${FABRIC_JOB_PATTERN:-ring}
    FABRIC_JOB_PROTO=${FABRIC_JOB_PROTO:-udp}
    FABRIC_JOB_PORTS=${FABRIC_JOB_PORTS-4791}
    FABRIC_JOB_DEMAND_MBPS=${FABRIC_JOB_DEMAND_MBPS:-}
    FABRIC_JOB_PRIORITY=${FABRIC_JOB_PRIORITY:-}
    FABRIC_MIN_NODES=${FABRIC_MIN_NODES:-2}
    FABRIC_STRICT=${FABRIC_STRICT:-0}
    if [ -n "${FABRIC_TARGET:-}" ]; then
        export FABRICCTL_TARGET="$FABRIC_TARGET"
    fi
}

# fabric_job_name: the controller's name for this Slurm job, e.g. slurm-4242.
fabric_job_name() {
    if [ -z "${SLURM_JOB_ID:-}" ]; then
        fabric_log "SLURM_JOB_ID is not set: run this as Slurm's PrologSlurmctld/EpilogSlurmctld"
        exit 2
    fi
    case "$SLURM_JOB_ID" in
        *[!0-9]*) fabric_log "SLURM_JOB_ID '$SLURM_JOB_ID' is not a number"; exit 2 ;;
    esac
    printf '%s%s\n' "$FABRIC_JOB_PREFIX" "$SLURM_JOB_ID"
}
