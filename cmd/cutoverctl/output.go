package main

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// outputFormats are the values of -o.
var outputFormats = []string{"table", "json", "yaml"}

// writeYAML writes msg as YAML: its protojson form (proto field names, the
// same as -o json, so that a field has one name in both) turned into block
// YAML, fields in the same order.
func writeYAML(w io.Writer, msg proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode %T: %w", msg, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil { // JSON is YAML
		return fmt.Errorf("encode %T as YAML: %w", msg, err)
	}
	blockStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode %T as YAML: %w", msg, err)
	}
	return enc.Close()
}

// blockStyle drops the flow style and quotes that the JSON form carries, so
// that the encoder writes block YAML and quotes only the strings that need
// it (such as "123" or "true", which must stay strings).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// writeEvent writes one followed event for -o json (one line) or -o yaml
// (one document, after a "---" line).
func (c *cli) writeEvent(w io.Writer, msg proto.Message) error {
	if c.output == "yaml" {
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		return writeYAML(w, msg)
	}
	return writeJSON(w, msg, false)
}
