package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	cutoverv1 "github.com/cutover-dev/cutover/proto/cutover/v1"
)

// outputIsFile, as an annotation of a command, makes -o the file it writes
// instead of the output format.
const outputIsFile = "output-is-file"

func newDeployPackageCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Annotations: map[string]string{outputIsFile: "yes"},
		Use:         "package ID -o FILE",
		Short:       "Download the file the package step of a deployment produced",
		Long: `Download the file that the package step (cutover.yaml package:) produced
after deployment ID was activated. The step runs only when a file matching
its when_changed globs differs from the previous release: a deployment
whose files did not change has no package (the last one that ran it has).
The file is written beside FILE first, then renamed into place; "-o -"
writes it to stdout.`,
		Example: `  cutoverctl deploy package d-7 -o app.apk`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := c.output
			if slices.Contains(outputFormats, out) {
				return fmt.Errorf("-o FILE is required: where to write the package (- for stdout)")
			}
			api, err := c.api()
			if err != nil {
				return err
			}
			ctx, cancel := c.callCtx(cmd.Context())
			defer cancel()
			stream, err := api.GetDeploymentPackage(ctx, &cutoverv1.GetDeploymentPackageRequest{Id: args[0]})
			if err != nil {
				return err
			}
			return savePackage(stream, out, c.stdout, c.stderr)
		},
	}
}

// savePackage writes the streamed package to path (stdout for "-").
func savePackage(stream cutoverv1.AdminService_GetDeploymentPackageClient, path string, stdout, stderr io.Writer) error {
	var (
		w    io.Writer = stdout
		f    *os.File
		name string
		size int64
		got  int64
	)
	if path != "-" {
		var err error
		if f, err = os.Create(path + ".part"); err != nil {
			return err
		}
		defer func() {
			f.Close()
			os.Remove(path + ".part") // gone after the rename
		}()
		w = f
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if msg.GetName() != "" {
			name, size = msg.GetName(), msg.GetSizeBytes()
		}
		n, err := w.Write(msg.GetData())
		got += int64(n)
		if err != nil {
			return err
		}
	}
	if got != size {
		return fmt.Errorf("received %d bytes of the %d-byte package %s; nothing was written to %s; retry", got, size, name, path)
	}
	if f == nil {
		return nil
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(path+".part", path); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "package %s (%s) written to %s\n", name, formatBytes(size), path)
	return nil
}
