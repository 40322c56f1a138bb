# Sourced by the scripts in this folder: lutf_as_root "$@" re-runs the calling
# script as root. Root goes on as it is; another user re-runs it through sudo
# when sudo exists (keeping the LUTF_* and CI variables); without sudo it
# stops with a message that says how to run it. Source it before any cd.
lutf_self=$(realpath "$0")
lutf_as_root() {
	local vars=() name
	[ "$(id -u)" -eq 0 ] && return 0
	if ! command -v sudo >/dev/null 2>&1; then
		echo "$(basename "$0"): needs root: run it as root (sudo is not installed)" >&2
		exit 1
	fi
	for name in $(compgen -e); do
		case $name in LUTF_* | CI) vars+=("$name=${!name}") ;; esac
	done
	exec sudo -- env "${vars[@]}" bash "$lutf_self" "$@"
}
