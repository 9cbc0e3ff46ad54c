// Command berth is the berth registry server and its command-line client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-registry/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Execute(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, cli.ErrorText(err, time.Now()))
		os.Exit(1)
	}
}
