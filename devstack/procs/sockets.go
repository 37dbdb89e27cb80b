package procs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LocalPorts returns the local TCP ports of the sockets process pid holds open (its listeners
// and its client connections), read from /proc/PID/fd and /proc/PID/net/tcp{,6}. A server that
// logs a client's address (ip:port) can so be told which process the client is.
func LocalPorts(pid int) (map[int]bool, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, fmt.Errorf("fds of %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for port, ino := range ParseNetTCP(string(b)) {
			if inodes[ino] {
				ports[port] = true
			}
		}
	}
	return ports, nil
}

// ParseNetTCP maps each local port of a /proc/net/tcp table to its socket inode (a port with
// several sockets keeps one of them; a client port is unique on loopback).
func ParseNetTCP(table string) map[int]string {
	out := map[int]string{}
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil {
			continue
		}
		out[int(port)] = f[9]
	}
	return out
}
