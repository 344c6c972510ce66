package deploy_test

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestPromtool checks the Prometheus files with promtool: the rules parse,
// the example configuration is valid and loads the rules (check config also
// checks the rule files it names, relative to itself), and the rules' unit
// tests pass: each alert fires on the series it is about, with the labels and
// texts expected, and not on others.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	tests := []struct {
		name    string
		args    []string
		wantOut string
	}{
		{"check rules", []string{"check", "rules", "cutover-rules.yml"}, "SUCCESS: 9 rules found"},
		{"check config", []string{"check", "config", "prometheus.yml"}, "1 rule files found"},
		{"test rules", []string{"test", "rules", "cutover-rules.test.yml"}, "SUCCESS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, "prometheus", promtool, tt.args...)
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tt.args, " "), err, out)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Fatalf("promtool %s did not say %q:\n%s", strings.Join(tt.args, " "), tt.wantOut, out)
			}
		})
	}
}

// TestRulesUseDocumentedMetrics checks that every cutover_ metric the rules
// use is one that deploy/README.md tells the daemons to export, and that
// every rule file alert has a test in cutover-rules.test.yml.
func TestRulesUseDocumentedMetrics(t *testing.T) {
	readme := readFile(t, "README.md")
	_, metricsSection, ok := strings.Cut(readme, "\n## Metrics\n")
	if !ok {
		t.Fatal(`README.md has no "## Metrics" section`)
	}
	metricsSection, _, _ = strings.Cut(metricsSection, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(cutover_[a-z_]+)[{`]").FindAllStringSubmatch(metricsSection, -1) {
		documented[m[1]] = true
	}
	if len(documented) < 13 {
		t.Fatalf("README.md Metrics section lists %d metrics, want at least 13", len(documented))
	}

	rules := readFile(t, "prometheus/cutover-rules.yml")
	var missing []string
	for _, m := range regexp.MustCompile(`cutover_[a-z_]+`).FindAllString(rules, -1) {
		if !documented[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the rules use metrics that README.md does not list: %q", missing)
	}

	tests := readFile(t, "prometheus/cutover-rules.test.yml")
	for _, m := range regexp.MustCompile(`(?m)^\s+- alert: (\w+)`).FindAllStringSubmatch(rules, -1) {
		if !strings.Contains(tests, "alertname: "+m[1]+"\n") {
			t.Errorf("alert %s has no test in cutover-rules.test.yml", m[1])
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
