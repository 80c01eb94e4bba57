package status

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// LastRun is what the metrics say about the last takeover sgerun ran.
type LastRun struct {
	Time    time.Time
	Success bool
	// RunID and Status are the run's id and how it ended (a journal
	// status, e.g. committed_with_failures).
	RunID  string
	Status string
}

// WritePrometheus writes node_exporter textfile-collector metrics for r.
func WritePrometheus(w io.Writer, r *Report, v Verdict, last *LastRun) error {
	var b strings.Builder
	metric := func(name, help, typ string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("sgerun_check_state", "Nagios state of sgerun check (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).", "gauge")
	fmt.Fprintf(&b, "sgerun_check_state %d\n", v.State)
	metric("sgerun_qmaster_info", "1 for the host act_qmaster names.", "gauge")
	if r.ActQmaster != "" {
		fmt.Fprintf(&b, "sgerun_qmaster_info{host=%q} 1\n", r.ActQmaster)
	}
	metric("sgerun_qmaster_serving", "1 when the host's qmaster answers qping with status 0.", "gauge")
	metric("sgerun_qmaster_running", "Number of sge_qmaster processes on the host.", "gauge")
	hosts := append([]Host(nil), r.Hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	var serving, running strings.Builder
	for _, h := range hosts {
		if !h.Reachable {
			continue
		}
		ok := 0
		if h.Qping == 0 && len(h.QmasterPID) > 0 {
			ok = 1
		}
		fmt.Fprintf(&serving, "sgerun_qmaster_serving{host=%q,role=%q} %d\n", h.Name, h.Role, ok)
		fmt.Fprintf(&running, "sgerun_qmaster_running{host=%q,role=%q} %d\n", h.Name, h.Role, len(h.QmasterPID))
	}
	b.WriteString(serving.String())
	b.WriteString(running.String())
	metric("sgerun_split_brain", "1 when qmaster runs on more than one host.", "gauge")
	fmt.Fprintf(&b, "sgerun_split_brain %d\n", boolInt(r.SplitBrain))
	metric("sgerun_pending_fence", "1 while an old master waits to be fenced.", "gauge")
	fmt.Fprintf(&b, "sgerun_pending_fence %d\n", boolInt(r.PendingFence != nil))
	metric("sgerun_heartbeat_age_seconds", "Age of the qmaster heartbeat file (-1: unknown).", "gauge")
	fmt.Fprintf(&b, "sgerun_heartbeat_age_seconds %d\n", r.HeartbeatAge)
	metric("sgerun_exec_hosts", "Exec hosts in the inventory.", "gauge")
	fmt.Fprintf(&b, "sgerun_exec_hosts %d\n", r.ExecTotal)
	metric("sgerun_exec_hosts_reporting", "Exec hosts reporting load to the active qmaster.", "gauge")
	fmt.Fprintf(&b, "sgerun_exec_hosts_reporting %d\n", r.ExecReporting)
	if r.LastTakeover != nil {
		metric("sgerun_last_takeover_timestamp_seconds", "Time of the last takeover recorded on the shared filesystem.", "gauge")
		fmt.Fprintf(&b, "sgerun_last_takeover_timestamp_seconds %d\n", r.LastTakeover.Time.Unix())
		metric("sgerun_last_takeover_acknowledged", "1 when the last takeover was acknowledged (sgerun ack).", "gauge")
		fmt.Fprintf(&b, "sgerun_last_takeover_acknowledged %d\n", boolInt(r.LastTakeover.Acked))
	}
	if last != nil {
		metric("sgerun_last_takeover_run_timestamp_seconds", "Start of the last takeover run in this controller's journal.", "gauge")
		fmt.Fprintf(&b, "sgerun_last_takeover_run_timestamp_seconds %d\n", last.Time.Unix())
		metric("sgerun_last_takeover_run_success", "1 when the last takeover run in this controller's journal succeeded.", "gauge")
		fmt.Fprintf(&b, "sgerun_last_takeover_run_success %d\n", boolInt(last.Success))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WritePrometheusFile writes the metrics to path atomically (temp file and
// rename), as the node_exporter textfile collector expects.
func WritePrometheusFile(path string, r *Report, v Verdict, last *LastRun) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := WritePrometheus(tmp, r, v, last); err != nil {
		tmp.Close()
		return fmt.Errorf("write metrics: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write metrics: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
