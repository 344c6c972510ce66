package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// traffic sends requests to every front-end, from two clients each (one
// with a new connection per request, one keeping its connection), until
// stopped: the demo's way of showing that a continue and a rollback drop
// no request.
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	versions map[string]int64
}

func startTraffic(ports []int) *traffic {
	tr := &traffic{stop: make(chan struct{}), versions: map[string]int64{}}
	for _, port := range ports {
		for _, keepAlive := range []bool{false, true} {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			tr.wg.Go(func() {
				defer client.CloseIdleConnections()
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-tr.stop:
						return
					case <-tick.C:
					}
					tr.one(client, url)
				}
			})
		}
	}
	return tr
}

func (tr *traffic) one(client *http.Client, url string) {
	resp, err := client.Get(url)
	if err != nil {
		tr.fail.Add(1)
		return
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		tr.fail.Add(1)
		return
	}
	tr.ok.Add(1)
	tr.mu.Lock()
	tr.versions[strings.TrimSpace(string(b))]++
	tr.mu.Unlock()
}

// end stops the clients and says what they saw.
func (tr *traffic) end() string {
	close(tr.stop)
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var parts []string
	for v, n := range tr.versions {
		parts = append(parts, fmt.Sprintf("%d by %s", n, v))
	}
	return fmt.Sprintf("%d requests answered (%s), %d failed", tr.ok.Load(), strings.Join(parts, ", "), tr.fail.Load())
}
