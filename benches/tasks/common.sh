# Shared by the task benchmarks' seed scripts (sourced, not run): `logged LOG LABEL CMD...` runs
# CMD under /usr/bin/time, prints its output, and appends to LOG its last line, prefixed with
# LABEL, then its peak resident memory (`time -v`'s "Maximum resident set size") and the
# machine's load average when it ended.
logged() {
    local log=$1 label=$2
    shift 2
    local out mem
    out=$(mktemp)
    mem=$(mktemp)
    /usr/bin/time -f "%M" -o "$mem" "$@" | tee "$out"
    echo "$label $(tail -n 1 "$out"); peak $(($(tail -n 1 "$mem") / 1024)) MB;" \
        "load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
    rm -f "$out" "$mem"
}
