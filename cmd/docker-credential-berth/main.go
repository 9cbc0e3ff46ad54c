// Command docker-credential-berth is docker's credential helper for berth registries (the
// protocol's get, store, erase and list): every get hands out a fresh registry refresh token,
// from the berth CLI's sign-in, a service principal's secret (BERTH_CLIENT_ID,
// BERTH_CLIENT_SECRET) or a federated token file (BERTH_CLIENT_ID, BERTH_FEDERATED_TOKEN_FILE).
// `berth login -n REGISTRY --credential-helper` registers a login server with it. The berth
// binary itself, named docker-credential-berth, does the same.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-registry/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.CredentialHelper(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stdout, err) // the protocol reads a helper's error from its standard output
		os.Exit(1)
	}
}
