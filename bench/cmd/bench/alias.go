package main

import (
	"github.com/leadpipe/leadpipe/devstack/firestoreemu"
	"github.com/leadpipe/leadpipe/devstack/procs"
)

type firestoreCount = firestoreemu.RPCCount

var localPorts = procs.LocalPorts
