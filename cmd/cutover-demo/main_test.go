package main

import (
	"bytes"
	"testing"
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
