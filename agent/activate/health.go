package activate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cutover-dev/cutover/pkg/errkind"
)

// firstProbeInterval is the first pause between health probes; it doubles up
// to the configured interval, so a quick app is seen healthy quickly.
const firstProbeInterval = 5 * time.Millisecond

// waitHealthy polls url with HTTP GET until it answers 2xx or timeout passes.
func waitHealthy(parent context.Context, client *http.Client, url string, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var last string
	pause := min(firstProbeInterval, interval)
	for {
		last = probe(ctx, client, url)
		if last == "" {
			return nil
		}
		t := time.NewTimer(pause)
		pause = min(2*pause, interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if parent.Err() != nil {
				return fmt.Errorf("health check %s interrupted (the agent is stopping): %w", url, parent.Err())
			}
			return fmt.Errorf("health check %s did not answer 2xx within %v (last: %s): %w", url, timeout, last, errkind.DeadlineExceeded)
		case <-t.C:
		}
	}
}

// probe returns "" if url answers 2xx, else what went wrong.
func probe(ctx context.Context, client *http.Client, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Status
	}
	return ""
}
