// Command sgerun fails a Grid Engine qmaster over to its shadow host and
// back, running declarative runbooks over SSH with dry-run, rollback and a
// durable journal.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sgerun/sgerun/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(in, out, errOut)
	go func() {
		<-ctx.Done()
		stop()
		// A second Ctrl-C while remote commands are being stopped exits now,
		// unless the command handles signals itself (watch).
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt)
		for range again {
			if a.ownSignals.Load() {
				continue
			}
			fmt.Fprintln(errOut, "sgerun: interrupted twice, exiting")
			os.Exit(exitcode.Interrupted)
		}
	}()
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := exitCode(err)
	if err != nil && !a.reported {
		fmt.Fprintf(errOut, "sgerun: %v\n", err)
	}
	return code
}
