// Command runtrust-cluster runs the tests' single-node Kubernetes cluster (internal/kubetest.StartNode) on this
// machine until Ctrl-C: kube-apiserver with etcd, kube-controller-manager, kube-scheduler, kube-proxy,
// containerd's CRI and a kubelet, with a plain-HTTP OCI registry on loopback beside it that the node pulls
// from. It prints the kubeconfig and the registry's address; `make cluster` runs it (as root: the kubelet and
// containerd need it).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/runtrust/runtrust/internal/kubetest"
	"github.com/runtrust/runtrust/internal/programtb"
	"github.com/runtrust/runtrust/internal/registry/registrytest"
)

func main() {
	dir := flag.String("dir", ".run/cluster", "where the cluster's files go (removed when it stops)")
	name := flag.String("node", "kubetest-node", "the node's name")
	flag.Parse()
	logger := log.New(os.Stderr, "runtrust-cluster: ", log.LstdFlags)
	if os.Geteuid() != 0 {
		logger.Fatal("the kubelet and containerd need root: run as root (sudo make cluster)")
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	if err != nil {
		logger.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := programtb.New(ctx, "runtrust-cluster", abs, logger)
	defer func() {
		h.Stop()
		_ = os.RemoveAll(abs)
	}()
	logger.Print("starting the control plane, the controllers, containerd and the kubelet (about 10 s)")
	err = h.Run(func() {
		reg := registrytest.Start(h)
		n := kubetest.StartNode(h, kubetest.NodeOptions{Registry: reg.Host, Name: *name})
		fmt.Printf("node %s is Ready\nexport KUBECONFIG=%s\nregistry (plain HTTP, the node pulls from it): %s\n"+
			"logs: %s\nCtrl-C stops the cluster and removes it\n", n.Name, n.Kubeconfig, reg.Host, n.Dir)
	})
	if err != nil {
		logger.Printf("the cluster did not start: %v", err)
		return
	}
	<-ctx.Done()
	logger.Print("stopping")
}
