package procs

import "syscall"

// sysProcAttr puts the service in its own process group (a Ctrl-C at devstack's terminal
// reaches devstack, which stops the services itself, in order) and has the kernel SIGKILL it
// if devstack dies without stopping it, so no service outlives its emulators.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
