// Command berth-credential-provider is a kubelet image credential provider for berth registries
// (credentialprovider.kubelet.k8s.io/v1): see deploy/kubernetes/ and docs/kubernetes.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-registry/berth/internal/credprovider"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := credprovider.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-credential-provider:", err)
		os.Exit(1)
	}
}
