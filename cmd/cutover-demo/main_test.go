package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/pkg/window"
)

func TestQuoteArgs(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"env", "create", "demo"}, "env create demo"},
		{[]string{"--window", "Mon-Fri 02:00-04:00 UTC"}, "--window 'Mon-Fri 02:00-04:00 UTC'"},
		{[]string{""}, "''"},
		{[]string{"it's"}, `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := quoteArgs(tt.in); got != tt.want {
			t.Errorf("quoteArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIndenter(t *testing.T) {
	var b bytes.Buffer
	in := &indenter{w: &b, prefix: "> "}
	for _, s := range []string{"one\ntw", "o\n", "three"} {
		if _, err := in.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.String(); got != "> one\n> two\n" {
		t.Errorf("before flush: %q", got)
	}
	in.flush()
	if got := b.String(); got != "> one\n> two\n> three\n" {
		t.Errorf("after flush: %q", got)
	}
}

func TestDemoWindowIsOpenNow(t *testing.T) {
	for _, now := range []time.Time{
		time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC), // across midnight
		time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
	} {
		w := demoWindow(now)
		s, err := window.ParseAll([]string{w})
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		if open, _ := s.Open(now); !open {
			t.Errorf("window %q is not open at %s", w, now)
		}
	}
}
