package main

import "github.com/leadpipe/leadpipe/devstack/stack"

func stackServiceVars() []string { return stack.ServiceVars() }
