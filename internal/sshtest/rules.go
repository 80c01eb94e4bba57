package sshtest

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Rules answers exec requests from a small rule set instead of a shell, so
// that a command costs no process and a thousand hosts fit on two cores.
//
// A command is a list of simple commands separated by ";", "&&" or
// newlines. Words are split on blanks; single and double quotes group
// words and are removed; nothing is expanded. The commands known:
//
//	true, :          exit 0
//	false            exit 1
//	echo [-n] WORD…  print the words
//	hostname         print the virtual host's name
//	sleep SECONDS    wait (a decimal number; cut short when the session ends)
//	exit [N]         end with status N (default 0)
//
// Any other command prints "sshtest: NAME: command not found" on stderr and
// fails with 127. The zero Rules answers at once and never fails.
type Rules struct {
	// Latency delays every command before it runs.
	Latency time.Duration
	// Delay, when set, gives each host's latency instead of Latency.
	Delay func(h *Host) time.Duration
	// Fail, when set and non-zero for a host, makes every command on that
	// host print "sshtest: HOST: simulated failure" on stderr and exit
	// with the code Fail returned, after the latency.
	Fail func(h *Host) int
}

// FailEvery returns a Rules.Fail under which host i fails with code when
// i%k == 0 (host0, hostk, host2k, …). k < 1 fails no host.
func FailEvery(k, code int) func(h *Host) int {
	return func(h *Host) int {
		if k < 1 || h.Index%k != 0 {
			return 0
		}
		return code
	}
}

// Handler returns the Options.Handler that applies r.
func (r Rules) Handler() func(h *Host, cmd string, s Session) int {
	return func(h *Host, cmd string, s Session) int { return r.run(h, cmd, s) }
}

func (r Rules) run(h *Host, cmd string, s Session) int {
	d := r.Latency
	if r.Delay != nil {
		d = r.Delay(h)
	}
	if !pause(s.Context(), d) {
		return 130
	}
	if r.Fail != nil {
		if code := r.Fail(h); code != 0 {
			_, _ = fmt.Fprintf(s.Stderr(), "sshtest: %s: simulated failure\n", h.Name)
			return code
		}
	}
	status := 0
	skip := false // after a failed "&&"
	for _, c := range parseCommands(cmd) {
		if c.sep == "&&" && status != 0 {
			skip = true
		}
		if c.sep == ";" {
			skip = false
		}
		if skip || len(c.words) == 0 {
			continue
		}
		var exit bool
		status, exit = runRule(h, c.words, s)
		if exit {
			return status
		}
	}
	return status
}

// runRule runs one simple command; exit reports an "exit" (or a cancelled
// sleep) that ends the whole command line.
func runRule(h *Host, w []string, s Session) (status int, exit bool) {
	out := s.Stdout()
	switch w[0] {
	case "true", ":":
		return 0, false
	case "false":
		return 1, false
	case "hostname":
		_, _ = io.WriteString(out, h.Name+"\n")
		return 0, false
	case "echo":
		args, nl := w[1:], "\n"
		if len(args) > 0 && args[0] == "-n" {
			args, nl = args[1:], ""
		}
		_, _ = io.WriteString(out, strings.Join(args, " ")+nl)
		return 0, false
	case "sleep":
		if len(w) != 2 {
			_, _ = io.WriteString(s.Stderr(), "sshtest: sleep: want one number of seconds\n")
			return 2, false
		}
		secs, err := strconv.ParseFloat(w[1], 64)
		if err != nil || secs < 0 {
			_, _ = fmt.Fprintf(s.Stderr(), "sshtest: sleep: bad number %q\n", w[1])
			return 2, false
		}
		if !pause(s.Context(), time.Duration(secs*float64(time.Second))) {
			return 130, true
		}
		return 0, false
	case "exit":
		if len(w) == 1 {
			return 0, true
		}
		n, err := strconv.Atoi(w[1])
		if err != nil {
			_, _ = fmt.Fprintf(s.Stderr(), "sshtest: exit: bad number %q\n", w[1])
			return 2, true
		}
		return n & 0xff, true
	}
	_, _ = fmt.Fprintf(s.Stderr(), "sshtest: %s: command not found\n", w[0])
	return 127, false
}

// pause waits d or until ctx ends; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// simpleCommand is one command of a command line and the separator before
// it ("" for the first, ";" or "&&").
type simpleCommand struct {
	sep   string
	words []string
}

// parseCommands splits a command line into simple commands.
func parseCommands(line string) []simpleCommand {
	var (
		cmds  []simpleCommand
		cur   = simpleCommand{}
		word  strings.Builder
		inW   bool
		quote rune
	)
	endWord := func() {
		if inW {
			cur.words = append(cur.words, word.String())
			word.Reset()
			inW = false
		}
	}
	endCmd := func(sep string) {
		endWord()
		cmds = append(cmds, cur)
		cur = simpleCommand{sep: sep}
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				word.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inW = c, true
		case c == ';' || c == '\n':
			endCmd(";")
		case c == '&' && i+1 < len(rs) && rs[i+1] == '&':
			endCmd("&&")
			i++
		case c == ' ' || c == '\t':
			endWord()
		default:
			word.WriteRune(c)
			inW = true
		}
	}
	endCmd("")
	return cmds
}
