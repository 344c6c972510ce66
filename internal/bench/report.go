package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/pkg/bytesize"
)

// Result holds what one run measured.
type Result struct {
	// Size is the generated data's size; Agents the many-agents count.
	Size   int64
	Agents int
	// RawTCP is the loopback TCP goodput, bytes/s.
	RawTCP float64
	// StoreOnly is bbolt's batched write rate of the chunks alone, bytes/s.
	StoreOnly float64
	// Disk is the rate at which this disk writes the same bytes durably
	// (plain files, fsync every 32 MiB), bytes/s.
	Disk float64
	// Solo is stage 1 of v1 to one agent (transfer_duration); SoloBytes its release size.
	Solo      time.Duration
	SoloBytes int64
	// Ingest is the agent's rate of chunk bytes committed while fetching, bytes/s.
	Ingest float64
	// PeakRSS is the solo agent's VmHWM after staging, bytes.
	PeakRSS int64
	// ChangedSent and ChangedSize: bytes sent for v2 (1% changed) and its size.
	ChangedSent, ChangedSize int64
	// UnchangedSent and UnchangedSize: the same for v2 deployed again.
	UnchangedSent, UnchangedSize int64
	// ResumeMissing is what the killed agent still lacked; ResumeSent what
	// the controller sent after the kill.
	ResumeMissing, ResumeSent int64
	// Many is stage 1 to Agents agents at once; ManySent the bytes sent.
	Many     time.Duration
	ManySent int64
	// Stage2 is stage 2 (continue) of that deployment on the controller's
	// clock (activate_time to finish_time); ContinueWall the same seen by the
	// caller (ContinueDeployment until DEPLOYED is polled); Spread its
	// activation_spread; Arm and Swap its arm_duration (the agents verify
	// the staged files) and swap_duration.
	Stage2, ContinueWall, Spread, Arm, Swap time.Duration
	// RsyncFirst is `rsync -a --fsync` of the release Many staged to as
	// many local targets at once (zero: rsync is not installed).
	RsyncFirst time.Duration
	// V2Pairs are the prepares, on the same agents, of a v2 with 1% of the
	// files changed, each with rsync --fsync of it onto the targets, which
	// hold the version before (Config.V2Reps of them, one after another).
	V2Pairs []V2Pair
	// LatencyWith and LatencyWithout are a served app's latencies under
	// steady load during prepares of the release to a fresh agent, and for
	// as long without, in turn.
	LatencyWith, LatencyWithout LatencyStats
	// LatencyPairs are the same, pair by pair: the figure is the median of
	// their p99 ratios. Placement says where the controller and the
	// front-end ran meanwhile.
	LatencyPairs []LatencyPair
	Placement    string
}

// Figure is one row of the table.
type Figure struct {
	Name     string
	Measured string
	Ratio    float64
	Target   string
	OK       bool
	// Info marks a row reported without a ratio or a target.
	Info bool
}

// Figures returns the table's rows, the figures in its order.
func (r *Result) Figures() []Figure {
	goodput := float64(r.SoloBytes) / r.Solo.Seconds()
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	f := []Figure{
		{Name: "stage 1 goodput to one agent ÷ raw TCP loopback",
			Measured: fmt.Sprintf("%s/s ÷ %s/s", formatBytes(int64(goodput)), formatBytes(int64(r.RawTCP))),
			Ratio:    ratio(goodput, r.RawTCP), Target: "≥ 0.35 (aim 0.6)"},
		{Name: "agent ingest ÷ store-only batched writes",
			Measured: fmt.Sprintf("%s/s ÷ %s/s", formatBytes(int64(r.Ingest)), formatBytes(int64(r.StoreOnly))),
			Ratio:    ratio(r.Ingest, r.StoreOnly), Target: "≥ 0.8"},
		{Name: "bytes sent for v2 (1% changed, 10 places) ÷ release size",
			Measured: fmt.Sprintf("%s ÷ %s", formatBytes(r.ChangedSent), formatBytes(r.ChangedSize)),
			Ratio:    ratio(float64(r.ChangedSent), float64(r.ChangedSize)), Target: "≤ 0.03"},
		{Name: "bytes sent for an unchanged redeploy ÷ release size",
			Measured: fmt.Sprintf("%s ÷ %s", formatBytes(r.UnchangedSent), formatBytes(r.UnchangedSize)),
			Ratio:    ratio(float64(r.UnchangedSent), float64(r.UnchangedSize)), Target: "≤ 0.002"},
		{Name: "bytes sent after kill -9 at 50% and restart ÷ bytes missing",
			Measured: fmt.Sprintf("%s ÷ %s", formatBytes(r.ResumeSent), formatBytes(r.ResumeMissing)),
			Ratio:    ratio(float64(r.ResumeSent), float64(r.ResumeMissing)), Target: "≤ 1.05"},
		{Name: fmt.Sprintf("staging to %d agents at once ÷ (%d × one agent)", r.Agents, r.Agents),
			Measured: fmt.Sprintf("%s ÷ (%d × %s)", r.Many.Round(10*time.Millisecond), r.Agents, r.Solo.Round(10*time.Millisecond)),
			Ratio:    ratio(r.Many.Seconds(), float64(r.Agents)*r.Solo.Seconds()), Target: "≤ 1.25"},
		{Name: fmt.Sprintf("agent peak RSS while staging %s", formatBytes(r.SoloBytes)),
			Measured: formatBytes(r.PeakRSS),
			Ratio:    ratio(float64(r.PeakRSS), 128<<20), Target: "≤ 128 MiB"},
	}
	f[0].OK = f[0].Ratio >= 0.35
	f[1].OK = f[1].Ratio >= 0.8
	f[2].OK = f[2].Ratio <= 0.03
	f[3].OK = f[3].Ratio <= 0.002
	f[4].OK = f[4].Ratio <= 1.05 && r.ResumeMissing > 0
	f[5].OK = f[5].Ratio <= 1.25
	f[6].OK = f[6].Ratio <= 1
	if r.RsyncFirst > 0 {
		a := Figure{Name: fmt.Sprintf("prepare of a first release to %d agents ÷ rsync -a --fsync to %d targets", r.Agents, r.Agents),
			Measured: fmt.Sprintf("%s ÷ %s", r.Many.Round(10*time.Millisecond), r.RsyncFirst.Round(10*time.Millisecond)),
			Ratio:    ratio(r.Many.Seconds(), r.RsyncFirst.Seconds()), Target: "≤ 1.3"}
		a.OK = a.Ratio <= 1.3
		b := Figure{Name: fmt.Sprintf("prepare of a v2 (1%% of the files changed) to %d agents ÷ rsync --fsync onto v1 (median of %d pairs)", r.Agents, max(1, len(r.V2Pairs))),
			Measured: v2Measured(r.V2Pairs),
			Ratio:    medianV2(r.V2Pairs), Target: "≤ 1.0"}
		b.OK = b.Ratio <= 1.0
		f = append(f, a, b)
	}
	if len(r.LatencyPairs) > 0 {
		var pairs []string
		for _, p := range r.LatencyPairs {
			pairs = append(pairs, fmt.Sprintf("%s ÷ %s = %.2f (load %s)", p.With.P99.Round(10*time.Microsecond), p.Without.P99.Round(10*time.Microsecond), p.Ratio(), p.LoadAfter))
		}
		c := Figure{Name: fmt.Sprintf("served app p99 latency during a %s prepare to its front-end's agent ÷ without (median of %d pairs)", formatBytes(r.Size), len(r.LatencyPairs)),
			Measured: fmt.Sprintf("%s; all: p99 %s ÷ %s, p50 %s ÷ %s, %d and %d requests", strings.Join(pairs, "; "),
				r.LatencyWith.P99.Round(10*time.Microsecond), r.LatencyWithout.P99.Round(10*time.Microsecond),
				r.LatencyWith.P50.Round(10*time.Microsecond), r.LatencyWithout.P50.Round(10*time.Microsecond), r.LatencyWith.N, r.LatencyWithout.N),
			Ratio: medianRatio(r.LatencyPairs), Target: "≤ 1.2"}
		c.OK = c.Ratio <= 1.2
		f = append(f, c)
	}
	if r.Stage2 > 0 {
		f = append(f, Figure{Name: fmt.Sprintf("stage 2 (continue) on %d agents: controller (activate → finish), caller (call → DEPLOYED seen)", r.Agents),
			Measured: fmt.Sprintf("%s, %s (arm %s, swap %s, activation spread %s)", r.Stage2.Round(time.Millisecond), r.ContinueWall.Round(time.Millisecond),
				r.Arm.Round(time.Millisecond), r.Swap.Round(time.Millisecond), r.Spread.Round(time.Millisecond)),
			OK: true, Info: true})
	}
	return f
}

// Table renders the figures as a Markdown table.
func (r *Result) Table() string { return table(r.Figures()) }

// table renders figures as a Markdown table.
func table(figures []Figure) string {
	var b strings.Builder
	b.WriteString("| figure | measured | ratio | target | met |\n| --- | --- | --- | --- | --- |\n")
	for _, f := range figures {
		met := "yes"
		if !f.OK {
			met = "NO"
		}
		if f.Info {
			fmt.Fprintf(&b, "| %s | %s | — | — | — |\n", f.Name, f.Measured)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %s | %s |\n", f.Name, f.Measured, f.Ratio, f.Target, met)
	}
	return b.String()
}

// Context relates stage 1's goodput to this machine's disk, measured in
// the same run: no release can be staged durably faster than the disk
// writes its bytes.
func (r *Result) Context() string {
	if r.Disk == 0 || r.Solo <= 0 {
		return ""
	}
	goodput := float64(r.SoloBytes) / r.Solo.Seconds()
	var place string
	if r.Placement != "" {
		place = "latency figure: " + r.Placement + "\n"
	}
	return place + fmt.Sprintf("durable disk write of the same bytes: %s/s; stage 1 goodput ÷ that = %.2f; the goodput target (0.35 × raw TCP = %s/s) is %.1f × this disk's rate\n",
		formatBytes(int64(r.Disk)), goodput/r.Disk, formatBytes(int64(0.35*r.RawTCP)), 0.35*r.RawTCP/r.Disk)
}

// OK reports whether every figure meets its target.
func (r *Result) OK() bool { return allOK(r.Figures()) }

// allOK reports whether every one of figures meets its target.
func allOK(figures []Figure) bool {
	for _, f := range figures {
		if !f.OK {
			return false
		}
	}
	return true
}

// formatBytes renders n in binary units.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ParseSize reads a positive size such as "1GiB", "256MiB", "64M" or
// "1048576" (bytesize.Parse).
func ParseSize(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err == nil && n <= 0 {
		err = fmt.Errorf("size %q: want a positive size", s)
	}
	return n, err
}
