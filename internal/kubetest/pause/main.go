// Command pause is the sandbox ("pause") container of the test node's pods: it holds the pod's namespaces and
// does nothing else until it is told to stop. As the pod's PID 1 it also reaps the children that are
// reparented to it, as the upstream pause does. Built by internal/kubetest (CGO off, static) into the sandbox
// image it pushes to the loopback registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-children:
			for {
				var ws syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
