package sshexec

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// query is what is asked of ssh_config for one destination: the
// destination as `ssh DEST` would get it, and the values the caller sets
// explicitly, which rank above ssh_config as ssh's command-line options do.
type query struct {
	dest       string   // the destination (alias) ssh_config is matched against
	hostname   string   // explicit address (-o HostName=), or ""
	user       string   // -l, or ""
	port       int      // -p, or 0
	identities []string // -i, in order
	jump       string   // -J, or "" (ssh_config decides)
}

func (q query) key() string {
	return strings.Join([]string{q.dest, q.hostname, q.user, strconv.Itoa(q.port),
		strings.Join(q.identities, "\x01"), q.jump}, "\x00")
}

// options is what ssh_config (through ssh -G or the fallback parser) says
// about one destination, after the query's explicit values were applied.
type options struct {
	host             string // the destination as matched (%n)
	hostname         string // address to dial (%h)
	user             string // %r
	port             int    // %p
	identityFiles    []string
	certificateFiles []string
	identitiesOnly   bool
	identityAgent    string // "" unset, "none", "SSH_AUTH_SOCK" or a path
	proxyCommand     string // "" none
	proxyJump        string // "" none
	userKnownHosts   []string
	globalKnownHosts []string
	hostKeyAlias     string
	strictHostKeys   string // "yes", "no", "ask" or "accept-new"
	hashKnownHosts   bool
	connectTimeout   time.Duration // 0: none given
	hostKeyAlgos     []string
	// unsupported names a keyword whose effect sshexec cannot reproduce
	// and must not ignore, "" if none.
	unsupported   string
	pubkeyAuthOff bool // PubkeyAuthentication no
}

// resolver answers queries, once per distinct query, for the life of a
// Pool. Concurrent callers of one query share one answer.
type resolver struct {
	// sshPath is the ssh client asked with -G; "" means the built-in
	// parser.
	sshPath string
	// configFile is passed as -F; "" means ssh's own defaults
	// (~/.ssh/config and /etc/ssh/ssh_config).
	configFile string
	parser     *fallbackParser
	// classes, when not nil, lets one ssh -G answer stand for every
	// destination with the same Host blocks.
	classes *classifier
	sem     chan struct{} // bounds concurrent ssh -G processes

	mu    sync.Mutex
	cache map[string]*resolution
}

type resolution struct {
	done chan struct{}
	opts options
	err  error
}

func newResolver(sshPath, configFile string, parser *fallbackParser, classes *classifier) *resolver {
	return &resolver{
		sshPath:    sshPath,
		configFile: configFile,
		parser:     parser,
		classes:    classes,
		sem:        make(chan struct{}, max(4, 2*runtime.NumCPU())),
		cache:      make(map[string]*resolution),
	}
}

// resolve returns the options for q, asking ssh -G (or the parser) at most
// once per distinct q, or once per class of destinations.
func (r *resolver) resolve(ctx context.Context, q query) (options, error) {
	if r.classes == nil || r.sshPath == "" {
		o, err := r.resolveKey(ctx, q.key(), q)
		return o.clone(), err
	}
	sig, hostname := r.classes.signature(q.dest)
	cq := q
	cq.dest = "\x02" + sig
	if cq.hostname != "" {
		// Without Match, an explicit address changes only the address.
		cq.hostname = "\x02"
	}
	o, err := r.resolveKey(ctx, cq.key(), q)
	if err != nil {
		return options{}, err
	}
	// The answer for the class's first destination, made this one's:
	// only the host name differs.
	o = o.clone()
	o.host = q.dest
	// ssh lowercases the address, whichever way it was obtained.
	o.hostname = strings.ToLower(cmp.Or(q.hostname, hostname, q.dest))
	return o, nil
}

func (o options) clone() options {
	o.identityFiles = slices.Clone(o.identityFiles)
	o.certificateFiles = slices.Clone(o.certificateFiles)
	o.userKnownHosts = slices.Clone(o.userKnownHosts)
	o.globalKnownHosts = slices.Clone(o.globalKnownHosts)
	o.hostKeyAlgos = slices.Clone(o.hostKeyAlgos)
	return o
}

// resolveKey answers q under cache key k.
func (r *resolver) resolveKey(ctx context.Context, k string, q query) (options, error) {
	r.mu.Lock()
	res := r.cache[k]
	if res == nil {
		res = &resolution{done: make(chan struct{})}
		r.cache[k] = res
		r.mu.Unlock()
		res.opts, res.err = r.ask(ctx, q)
		if res.err != nil {
			// Remember answers, not failures: the next dial asks again
			// (after the user fixed ssh_config, or a Match exec that
			// failed once).
			r.mu.Lock()
			delete(r.cache, k)
			r.mu.Unlock()
		}
		close(res.done)
	} else {
		r.mu.Unlock()
	}
	select {
	case <-res.done:
		return res.opts, res.err
	case <-ctx.Done():
		return options{}, ctx.Err()
	}
}

func (r *resolver) ask(ctx context.Context, q query) (options, error) {
	if r.sshPath == "" {
		return r.parser.resolve(q)
	}
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return options{}, ctx.Err()
	}
	args := []string{"-G"}
	if r.configFile != "" {
		args = append(args, "-F", r.configFile)
	}
	if q.user != "" {
		args = append(args, "-l", q.user)
	}
	if q.port != 0 {
		args = append(args, "-p", strconv.Itoa(q.port))
	}
	if q.hostname != "" {
		args = append(args, "-o", "HostName="+q.hostname)
	}
	for _, id := range q.identities {
		args = append(args, "-i", id)
	}
	if q.jump != "" {
		args = append(args, "-J", q.jump)
	}
	args = append(args, "--", q.dest)
	cmd := exec.CommandContext(ctx, r.sshPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return options{}, fmt.Errorf("%w: ssh -G %s: %s", ErrConfig, q.dest, oneLine(msg))
	}
	o, err := parseSSHG(stdout.Bytes())
	if err != nil {
		return options{}, fmt.Errorf("%w: ssh -G %s: %w", ErrConfig, q.dest, err)
	}
	o.host = q.dest
	return o, nil
}

// oneLine joins the lines of an error text, dropping ssh's chatter.
func oneLine(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Pseudo-terminal will not be allocated") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}

// parseSSHG reads the output of ssh -G: one "keyword value" per line,
// keywords in lower case, list keywords repeated.
func parseSSHG(out []byte) (options, error) {
	var o options
	o.strictHostKeys = "ask"
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "hostname":
			o.hostname = val
		case "user":
			o.user = val
		case "port":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 || n > 65535 {
				return options{}, fmt.Errorf("bad port %q", val)
			}
			o.port = n
		case "identityfile":
			o.identityFiles = append(o.identityFiles, val)
		case "certificatefile":
			o.certificateFiles = append(o.certificateFiles, val)
		case "identitiesonly":
			o.identitiesOnly = yes(val)
		case "identityagent":
			o.identityAgent = val
		case "proxycommand":
			if val != "none" {
				o.proxyCommand = val
			}
		case "proxyjump":
			if val != "none" {
				o.proxyJump = val
			}
		case "userknownhostsfile":
			o.userKnownHosts = strings.Fields(val)
		case "globalknownhostsfile":
			o.globalKnownHosts = strings.Fields(val)
		case "hostkeyalias":
			o.hostKeyAlias = val
		case "stricthostkeychecking":
			o.strictHostKeys = normStrict(val)
		case "hashknownhosts":
			o.hashKnownHosts = yes(val)
		case "connecttimeout":
			if val != "none" {
				n, err := strconv.Atoi(val)
				if err != nil || n < 0 {
					return options{}, fmt.Errorf("bad connecttimeout %q", val)
				}
				o.connectTimeout = time.Duration(n) * time.Second
			}
		case "hostkeyalgorithms":
			o.hostKeyAlgos = strings.Split(val, ",")
		case "pubkeyauthentication":
			o.pubkeyAuthOff = !yes(val) && val != "unbound" && val != "host-bound"
		case "proxyusefdpass":
			if yes(val) {
				o.unsupported = "ProxyUseFdpass yes"
			}
		case "knownhostscommand":
			if val != "none" && val != "" {
				o.unsupported = "KnownHostsCommand (list the keys in a known_hosts file instead)"
			}
		case "revokedhostkeys":
			if val != "none" && val != "" {
				o.unsupported = "RevokedHostKeys (mark the keys @revoked in a known_hosts file instead)"
			}
		}
	}
	if err := sc.Err(); err != nil {
		return options{}, err
	}
	if o.hostname == "" || o.user == "" || o.port == 0 {
		return options{}, errors.New("output lacks hostname, user or port")
	}
	return o, nil
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true
	}
	return false
}

// normStrict maps StrictHostKeyChecking's spellings onto yes, no, ask and
// accept-new.
func normStrict(v string) string {
	switch strings.ToLower(v) {
	case "yes", "true":
		return "yes"
	case "no", "false", "off":
		return "no"
	case "accept-new":
		return "accept-new"
	}
	return "ask"
}
