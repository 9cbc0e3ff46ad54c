// Command berth is the berth registry server and its command-line client.
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
	err := cli.Execute(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth:", cli.SafeMessage(err.Error()))
		os.Exit(1)
	}
}
