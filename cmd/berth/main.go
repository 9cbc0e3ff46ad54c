// Command berth is the berth registry server and its command-line client. Run as
// docker-credential-berth (a link or a copy of this binary by that name), it is docker's
// credential helper for the login servers `berth login --credential-helper` registered.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-registry/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == "docker-credential-"+cli.HelperName {
		err := cli.CredentialHelper(ctx, cli.OSEnv(), os.Args[1:])
		stop()
		if err != nil {
			// The protocol reads a helper's error from its standard output.
			fmt.Fprintln(os.Stdout, err)
			os.Exit(1)
		}
		return
	}
	err := cli.Execute(ctx, cli.OSEnv(), os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, cli.ErrorText(err, time.Now()))
		os.Exit(1)
	}
}
