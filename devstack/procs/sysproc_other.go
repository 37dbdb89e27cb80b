//go:build !linux

package procs

import "syscall"

// sysProcAttr puts the service in its own process group (a Ctrl-C at devstack's terminal
// reaches devstack, which stops the services itself).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
