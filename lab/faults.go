package lab

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/sshexec"
)

// Partition takes the host's interface on net down, inside the host's
// network namespace: the host can no longer reach, or be reached on, that
// network. The other network and the shared filesystem stay up.
func (l *Lab) Partition(ctx context.Context, host string, net Net) error {
	return l.setLinks(ctx, host, net, "down")
}

// Heal brings both of the host's interfaces up again.
func (l *Lab) Heal(ctx context.Context, host string) error {
	return l.setLinks(ctx, host, NetAll, "up")
}

func (l *Lab) setLinks(ctx context.Context, host string, net Net, state string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	ifs, err := net.ifaces()
	if err != nil {
		return err
	}
	var lines []string
	for _, i := range ifs {
		lines = append(lines, "link set "+i+" "+state)
	}
	if err := ipBatch(ctx, h.Name, lines); err != nil {
		return fmt.Errorf("set %s links %s: %w", h.Name, state, err)
	}
	l.log.Info("links set", "lab", l.st.Name, "host", h.Name, "net", string(net), "state", state)
	return nil
}

// Hang stops (SIGSTOP) the sge_qmaster running on host, as seen in the
// host's own PID namespace. It returns ErrNoProcess when there is none.
func (l *Lab) Hang(ctx context.Context, host string) error {
	return l.signalDaemon(ctx, host, "sge_qmaster", "STOP")
}

// Resume continues (SIGCONT) the host's sge_qmaster.
func (l *Lab) Resume(ctx context.Context, host string) error {
	return l.signalDaemon(ctx, host, "sge_qmaster", "CONT")
}

func (l *Lab) signalDaemon(ctx context.Context, host, daemon, sig string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	_, _, err = l.Exec(ctx, h.Name, "pkill -"+sig+" -x "+daemon)
	var ee *sshexec.ExitError
	if errors.As(err, &ee) && ee.Code == 1 {
		return fmt.Errorf("%w: %s on %s", ErrNoProcess, daemon, h.Name)
	}
	if err != nil {
		return fmt.Errorf("signal %s on %s: %w", daemon, h.Name, err)
	}
	l.log.Info("signalled", "lab", l.st.Name, "host", h.Name, "daemon", daemon, "signal", sig)
	return nil
}

// Kill crashes the host: it SIGKILLs the host's init, which ends every
// process of the host at once (qmaster, execd, shadowd, sshd, jobs). The
// host's network namespace and addresses stay, so peers get "connection
// refused"; add Partition(host, NetAll) for a host that does not answer at
// all. Boot brings the host back.
func (l *Lab) Kill(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	pid, err := l.livePID(h)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", h.Name, err)
	}
	err = waitFor(ctx, 10*time.Second, 50*time.Millisecond, "host "+h.Name+" to die", func() (bool, error) {
		return len(findMarked(initMarker(h.Name))) == 0, nil
	})
	if err != nil {
		return err
	}
	h.InitPID = 0
	l.log.Info("host killed", "lab", l.st.Name, "host", h.Name)
	return writeState(l.st)
}

// Boot starts a killed host again: a new init, its sshd and, on an exec
// host, sge_execd. It does not start qmaster; run the rc script for that
// ("$SGE_ROOT/$SGE_CELL/common/sgemaster start").
func (l *Lab) Boot(ctx context.Context, host string) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	if _, err := l.livePID(h); err == nil {
		return fmt.Errorf("boot %s: host is up", h.Name)
	}
	if err := l.startInit(ctx, h); err != nil {
		return err
	}
	if err := writeState(l.st); err != nil {
		return err
	}
	if err := l.startSSHD(ctx, h); err != nil {
		return err
	}
	if h.Role == RoleExec {
		if err := l.rc(ctx, h.Name, "sgeexecd", "start"); err != nil {
			return err
		}
	}
	l.log.Info("host booted", "lab", l.st.Name, "host", h.Name)
	return nil
}
