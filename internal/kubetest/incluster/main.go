// Command incluster is what a pod of the test node runs to show that pods reach the apiserver as in a real
// cluster: at the kubernetes service's address from the environment the kubelet sets (routed by kube-proxy),
// with the pod's service-account token (the controllers and the ServiceAccount admission plugin), verified
// against the CA mounted beside it, as client-go's in-cluster configuration does. It lists the pods of its
// namespace and prints how many, or exits 1 saying why. Only the standard library, so it builds in a moment.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	if err := run(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}

func run() error {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return fmt.Errorf("no KUBERNETES_SERVICE_HOST/PORT in the environment")
	}
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return err
	}
	ns, err := os.ReadFile(sa + "namespace")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("ca.crt holds no certificate")
	}
	base := "https://" + net.JoinHostPort(host, port)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest("GET", base+"/api/v1/namespaces/"+string(ns)+"/pods", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("listing pods through %s: %w", base, err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listing pods through %s: %s", base, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return err
	}
	fmt.Printf("listed %d pods through %s\n", len(list.Items), base)
	return nil
}
