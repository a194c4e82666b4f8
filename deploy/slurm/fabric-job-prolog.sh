#!/usr/bin/env bash
# Slurm PrologSlurmctld: declare the starting Slurm job to the fabric controller.
#
# Turns the job's node list (in rank order) into host addresses, writes a job
# document and runs `fabricctl job apply`, so the controller places all the
# job's flows jointly and installs their rules before the first packet.
# Settings: see README.md in this directory. Exit 0 when declared, skipped
# (fewer than FABRIC_MIN_NODES nodes) or failed open; 1 on a failure with
# FABRIC_STRICT=1; 2 when not run by Slurm.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=fabric-slurm-lib.sh
. "$here/fabric-slurm-lib.sh"

# resolve NODE: the node's IPv4 address, from FABRIC_HOSTS_FILE ("node address"
# per line) when set, else from the resolver (DNS, /etc/hosts).
resolve() {
    local node=$1 address=""
    if [ -n "${FABRIC_HOSTS_FILE:-}" ]; then
        address=$(awk -v n="$node" '$0 !~ /^[[:space:]]*#/ && $1 == n { print $2; exit }' \
            "$FABRIC_HOSTS_FILE")
    else
        address=$(getent ahostsv4 "$node" 2>/dev/null | awk 'NR == 1 { print $1 }') || true
    fi
    if ! [[ "$address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
        return 1
    fi
    printf '%s\n' "$address"
}

check_settings() {
    case "$FABRIC_JOB_PATTERN" in
        ring | all-to-all) ;;
        *) fabric_fail "FABRIC_JOB_PATTERN '$FABRIC_JOB_PATTERN' must be ring or all-to-all" ;;
    esac
    [[ "$FABRIC_JOB_PROTO" =~ ^(tcp|udp|[0-9]{1,3})$ ]] ||
        fabric_fail "FABRIC_JOB_PROTO '$FABRIC_JOB_PROTO' must be tcp, udp or a protocol number"
    [[ "$FABRIC_JOB_PORTS" =~ ^([0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*)?$ ]] ||
        fabric_fail "FABRIC_JOB_PORTS '$FABRIC_JOB_PORTS' must be ports or lo-hi ranges, comma-separated"
    [[ -z "$FABRIC_JOB_DEMAND_MBPS" || "$FABRIC_JOB_DEMAND_MBPS" =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
        fabric_fail "FABRIC_JOB_DEMAND_MBPS '$FABRIC_JOB_DEMAND_MBPS' must be a number of Mbit/s"
    [[ -z "$FABRIC_JOB_PRIORITY" || "$FABRIC_JOB_PRIORITY" =~ ^[0-9]{1,5}$ ]] ||
        fabric_fail "FABRIC_JOB_PRIORITY '$FABRIC_JOB_PRIORITY' must be 0-65535"
    [[ "$FABRIC_MIN_NODES" =~ ^[0-9]+$ ]] ||
        fabric_fail "FABRIC_MIN_NODES '$FABRIC_MIN_NODES' must be a whole number"
    [[ -z "${FABRIC_HOSTS_FILE:-}" || -r "$FABRIC_HOSTS_FILE" ]] ||
        fabric_fail "cannot read FABRIC_HOSTS_FILE $FABRIC_HOSTS_FILE"
}

# write_job NAME ADDRESS...: the job document on stdout (YAML; every value checked above).
write_job() {
    local name=$1 ports="" port
    shift
    printf 'name: %s\n' "$name"
    printf 'description: "slurm job %s"\n' "$SLURM_JOB_ID"
    printf 'hosts: [%s]\n' "$(IFS=,; echo "$*" | sed 's/,/, /g')"
    printf 'pattern: %s\n' "$FABRIC_JOB_PATTERN"
    if [ -n "$FABRIC_JOB_PORTS" ]; then
        for port in ${FABRIC_JOB_PORTS//,/ }; do
            # A range is text ("lo-hi"), a single port a number.
            case "$port" in
                *-*) port="\"$port\"" ;;
            esac
            ports="${ports:+$ports, }$port"
        done
        printf 'match: {ip_proto: %s, dst_ports: [%s]}\n' "$FABRIC_JOB_PROTO" "$ports"
    else
        printf 'match: {ip_proto: %s}\n' "$FABRIC_JOB_PROTO"
    fi
    [ -z "$FABRIC_JOB_DEMAND_MBPS" ] || printf 'demand_mbps: %s\n' "$FABRIC_JOB_DEMAND_MBPS"
    [ -z "$FABRIC_JOB_PRIORITY" ] || printf 'priority: %s\n' "$FABRIC_JOB_PRIORITY"
}

main() {
    fabric_load_settings
    local name nodes node address status=0 output
    name=$(fabric_job_name)
    check_settings
    [ -n "${SLURM_JOB_NODELIST:-}" ] || fabric_fail "job $name: SLURM_JOB_NODELIST is empty"
    nodes=$(scontrol show hostnames "$SLURM_JOB_NODELIST") ||
        fabric_fail "job $name: scontrol cannot expand node list '$SLURM_JOB_NODELIST'"
    local -a addresses=()
    for node in $nodes; do
        address=$(resolve "$node") || fabric_fail "job $name: no IPv4 address for node $node"
        addresses+=("$address")
    done
    if [ "${#addresses[@]}" -lt "$FABRIC_MIN_NODES" ]; then
        fabric_log "job $name: ${#addresses[@]} node(s), fewer than $FABRIC_MIN_NODES: nothing to declare"
        exit 0
    fi
    job_file=$(mktemp "${TMPDIR:-/tmp}/fabric-$name.XXXXXX.yaml")
    write_job "$name" "${addresses[@]}" > "$job_file"
    output=$("$FABRIC_FABRICCTL" job apply "$job_file" 2>&1) || status=$?
    if [ "$status" -ne 0 ]; then
        fabric_fail "job $name: fabricctl job apply failed (exit $status): $output"
    fi
    fabric_log "job $name declared: $output"
}

# The job document is removed however the script ends.
job_file=""
trap '[ -z "$job_file" ] || rm -f "$job_file"' EXIT
main "$@"
