package faults

import (
	"context"
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy (toxiproxy) between the agents and the controller.
type Proxy struct {
	// Addr is where agents connect instead of the controller.
	Addr  string
	proxy *toxiproxy.Proxy
}

// latencyToxic names the latency toxic Slow adds.
const latencyToxic = "latency"

// NewProxy starts a proxy on listen (host:port) that forwards to upstream.
func NewProxy(listen, upstream string) (*Proxy, error) {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "controller", listen, upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("proxy %s -> %s: %w", listen, upstream, err)
	}
	return &Proxy{Addr: p.Listen, proxy: p}, nil
}

// Cut closes every connection through the proxy and stops accepting new
// ones until Restore: agents see their connection drop and cannot dial.
func (p *Proxy) Cut() { p.proxy.Stop() }

// Restore accepts connections again after Cut.
func (p *Proxy) Restore() error {
	if err := p.proxy.Start(); err != nil && err != toxiproxy.ErrProxyAlreadyStarted {
		return fmt.Errorf("restart proxy %s: %w", p.Addr, err)
	}
	return nil
}

// Slow delays every byte in both directions by latency ± jitter
// milliseconds until Fast.
func (p *Proxy) Slow(latencyMs, jitterMs int) error {
	for _, dir := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":%q,"type":"latency","stream":%q,"attributes":{"latency":%d,"jitter":%d}}`,
			latencyToxic+"_"+dir, dir, latencyMs, jitterMs)
		if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("proxy %s: add latency: %w", p.Addr, err)
		}
	}
	return nil
}

// Fast removes the latency Slow added.
func (p *Proxy) Fast() {
	for _, dir := range []string{"upstream", "downstream"} {
		_ = p.proxy.Toxics.RemoveToxic(context.Background(), latencyToxic+"_"+dir)
	}
}

// Close stops the proxy for good.
func (p *Proxy) Close() { p.proxy.Stop() }
