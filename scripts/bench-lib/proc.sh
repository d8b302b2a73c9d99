# CPU time of processes from /proc, for scripts/bench. Source it; it defines functions only.
# Times are in clock ticks (getconf CLK_TCK, 100 on Linux); a process that is gone counts 0.

# utime + stime of one process, all its threads included. With a second argument "reaped",
# also cutime + cstime: the children it has waited for (how PostgreSQL's exited backends
# stay counted).
proc_ticks() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return 0; }
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    read -r -a fields <<<"${stat##*) }"
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    if [[ ${2:-} == reaped ]]; then
        echo $((fields[11] + fields[12] + fields[13] + fields[14]))
    else
        echo $((fields[11] + fields[12]))
    fi
}

# A parent (with the children it has reaped) plus its live children: nginx's master and
# worker, or the postmaster and every backend.
tree_ticks() {
    local total child
    total=$(proc_ticks "$1" reaped)
    for child in $(pgrep -P "$1" || true); do
        total=$((total + $(proc_ticks "$child")))
    done
    echo "$total"
}

# True while the process exists and is not a zombie (an exited child not yet waited for
# still answers kill -0).
proc_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}
