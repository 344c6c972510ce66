package localcluster

// StartProc starts binary with args in its own process group, its output
// appended to dir/<name>.log: for test infrastructure that starts other
// servers than cutover's (internal/etcdcluster).
func StartProc(dir, name, binary string, args ...string) (*Proc, error) {
	return startProc(dir, name, binary, args...)
}
