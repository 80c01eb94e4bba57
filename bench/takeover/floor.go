package takeover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
)

// floor measures what no takeover can avoid, on the same kind of lab and
// fault (the master's scheduler network cut while jobs run), by hand and
// one part at a time:
//
//  1. cp -a of the spool directory into a new one (FloorCopy);
//  2. bootstrap and act_qmaster pointed at the copy and the shadow
//     (rewritten in place, untimed);
//  3. sgemaster -qmaster start on the shadow until qping says status 0
//     (FloorQmasterStart);
//  4. sgeexecd softstop on every exec host at once, until each sge_execd is
//     gone (SIGKILL of it after 30 s) (FloorSoftstop). Before the new
//     qmaster answers, a softstopped execd lingers: the rc script waits up
//     to 61 s for it (seen), so the softstop comes after the qmaster start,
//     as in the seed's script;
//  5. sgeexecd start on every exec host at once until each reports load to
//     the new qmaster (FloorExecdStart). Load is not spooled: a host the
//     new qmaster had load from before the restart is noted.
func (tr *trial) floor(ctx context.Context) error {
	l, t := tr.l, tr.t
	jobs, err := tr.submit(ctx, tr.cfg.Jobs, tr.cfg.JobSleep, 0)
	if err != nil {
		return err
	}
	t.Jobs = jobs
	if err := tr.waitRunning(ctx, jobs); err != nil {
		return err
	}
	if err := tr.fault(ctx); err != nil {
		return err
	}
	t.Start, t.Fault = time.Now(), time.Now()
	common := l.CommonDir()
	bootPath := filepath.Join(common, "bootstrap")
	boot, err := os.ReadFile(bootPath)
	if err != nil {
		return fmt.Errorf("read bootstrap: %w", err)
	}
	b := sge.ParseBootstrap(string(boot))
	qdir, db := b.QmasterSpoolDir, b.SpoolingParams
	spool := filepath.Dir(qdir)
	if filepath.Dir(db) != spool {
		return fmt.Errorf("qmaster spool %s and spool db %s not in one directory", qdir, db)
	}
	copyDir := spool + "_floor"

	c0 := time.Now()
	if _, _, err := tr.exec(ctx, l.Shadow(), 2*time.Minute, shell.Join("cp", "-a", spool, copyDir)); err != nil {
		return fmt.Errorf("copy spool: %w", err)
	}
	t.Marks[FloorCopy] = round3(time.Since(c0).Seconds())

	nb := strings.ReplaceAll(string(boot), qdir, filepath.Join(copyDir, filepath.Base(qdir)))
	nb = strings.ReplaceAll(nb, db, filepath.Join(copyDir, filepath.Base(db)))
	// In place: the file keeps its owner (qmaster runs as the admin user).
	if err := os.WriteFile(bootPath, []byte(nb), 0o644); err != nil {
		return fmt.Errorf("write bootstrap: %w", err)
	}
	if err := os.WriteFile(filepath.Join(common, "act_qmaster"), []byte(l.Shadow()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write act_qmaster: %w", err)
	}

	q0 := time.Now()
	if _, _, err := tr.exec(ctx, l.Shadow(), 2*time.Minute, filepath.Join(common, "sgemaster")+" -qmaster start </dev/null >/dev/null 2>&1"); err != nil {
		return fmt.Errorf("start qmaster: %w", err)
	}
	for qping(ctx, l, tr.witness, l.Shadow()) != 0 {
		if time.Since(q0) > 2*time.Minute {
			return errors.New("qmaster on the shadow: no qping status 0 within 2 min")
		}
		time.Sleep(tr.cfg.Poll)
	}
	t.Marks[FloorQmasterStart] = round3(time.Since(q0).Seconds())
	if rep, err := reported(ctx, l, tr.witness); err == nil && len(rep) > 0 {
		t.note("the new qmaster had load from %v before the execd restart", rep)
	}

	s0 := time.Now()
	rc := filepath.Join(common, "sgeexecd")
	errs := tr.onExecs(ctx, func(h string) error {
		if _, _, err := tr.exec(ctx, h, 90*time.Second, rc+" softstop </dev/null >/dev/null 2>&1"); err != nil {
			tr.notef("softstop on %s: %v", h, err)
		}
		gone := false
		for i := 0; i < 150 && !gone; i++ {
			_, _, err := tr.exec(ctx, h, 10*time.Second, "pgrep -x sge_execd")
			var ee *lab.ExitError
			gone = errors.As(err, &ee) && ee.Code == 1
			if !gone {
				time.Sleep(200 * time.Millisecond)
			}
		}
		if !gone {
			tr.notef("sge_execd on %s still ran 30 s after softstop: SIGKILL", h)
			if _, _, err := tr.exec(ctx, h, 10*time.Second, "pkill -KILL -x sge_execd"); err != nil {
				return fmt.Errorf("kill execd on %s: %w", h, err)
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	t.Marks[FloorSoftstop] = round3(time.Since(s0).Seconds())

	e0 := time.Now()
	errs = tr.onExecs(ctx, func(h string) error {
		if _, _, err := tr.exec(ctx, h, time.Minute, rc+" start </dev/null >/dev/null 2>&1"); err != nil {
			return fmt.Errorf("start execd on %s: %w", h, err)
		}
		return nil
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for {
		rep, err := reported(ctx, l, tr.witness)
		if err == nil && len(rep) == len(l.ExecHosts()) {
			break
		}
		if time.Since(e0) > 2*time.Minute {
			return fmt.Errorf("execds: not all reporting within 2 min (%v, %v)", rep, err)
		}
		time.Sleep(tr.cfg.Poll)
	}
	t.Marks[FloorExecdStart] = round3(time.Since(e0).Seconds())
	tr.finish(ctx, jobs, tr.cfg.JobSleep)
	return nil
}

// exec runs cmd as root on host with a time-out.
func (tr *trial) exec(ctx context.Context, host string, timeout time.Duration, cmd string) (string, string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return tr.l.Exec(cctx, host, cmd)
}

// onExecs runs fn for every exec host at once and returns the errors.
func (tr *trial) onExecs(ctx context.Context, fn func(host string) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, h := range tr.l.ExecHosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
