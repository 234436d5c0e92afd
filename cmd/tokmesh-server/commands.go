package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/crypt"
)

func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print or validate the configuration",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("config needs a subcommand: default or validate")
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the full default configuration as commented YAML",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := stdout.Write(config.DefaultYAML())
			if err != nil {
				return exitCode(exitRuntime)
			}
			return nil
		},
	})

	lf := &loadFlags{}
	validate := &cobra.Command{
		Use:   "validate [--config FILE] [flags]",
		Short: "Validate file + environment + flags; exit 0 if valid, 78 if not",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts, err := lf.options(c)
			if err != nil {
				return err
			}
			_, info, errs := config.Load(opts)
			for _, w := range info.Warnings {
				fmt.Fprintln(stderr, "warning: "+w)
			}
			if len(errs) > 0 {
				for _, e := range errs {
					fmt.Fprintln(stdout, e.Error())
				}
				fmt.Fprintf(stdout, "%d configuration error(s)\n", len(errs))
				return exitCode(exitConfig)
			}
			src := "no file"
			if info.File != "" {
				src = info.File
			}
			fmt.Fprintf(stdout, "configuration valid (%s)\n", src)
			return nil
		},
	}
	lf.register(validate)
	cmd.AddCommand(validate)
	return cmd
}

func newKeygenCmd(stdout, stderr io.Writer) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Write a new master key (64 hex characters, mode 0600); never overwrites",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if out == "" {
				return errors.New("keygen needs --out FILE")
			}
			k, err := crypt.GenerateMasterKey()
			if err != nil {
				fmt.Fprintf(stderr, "tokmesh-server keygen: %v\n", err)
				return exitCode(exitRuntime)
			}
			if err := crypt.WriteKeyFile(out, k); err != nil {
				if errors.Is(err, fs.ErrExist) {
					fmt.Fprintf(stderr, "tokmesh-server keygen: %s already exists; refusing to overwrite\n", out)
				} else {
					fmt.Fprintf(stderr, "tokmesh-server keygen: %v\n", err)
				}
				return exitCode(exitRuntime)
			}
			fmt.Fprintf(stdout, "wrote master key %s (key id %s)\n", out, k.ID())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "key file to create (must not exist)")
	return cmd
}
