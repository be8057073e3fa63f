package awsendpoint

import "syscall"

// sysProcAttr makes the kernel kill moto when the test binary dies without running its
// cleanup (a test timeout's panic), so no server outlives its suite.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
