// Command devstack runs leadpipe on one machine with no cloud account and no Docker.
//
//	devstack emulators   Firestore, Pub/Sub and GCS emulators only
//	devstack up          the emulators, the fake CRM, ingest, processor and replayer
//	devstack up --processes [--processors=N]
//	                     the same with each service as its own OS process (logs in .devstack/logs)
//
// When everything serves it prints one `export NAME=VALUE` line per endpoint to stdout, then
// `devstack: ready`. Logs (text on a terminal, else JSON; one "service" field per line) and human-friendly text go to
// stderr. Ctrl-C or SIGTERM stops everything cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/leadpipe/leadpipe/common/logging"
	"github.com/leadpipe/leadpipe/devstack/emulators"
	"github.com/leadpipe/leadpipe/devstack/stack"
)

const usage = `usage: devstack <command> [flags]

commands:
  emulators   run the Firestore, Pub/Sub and GCS emulators
  up          run the whole pipeline: emulators, fake CRM, ingest, processor, replayer

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	o := stack.Options{Ports: stack.DefaultPorts}
	fs.StringVar(&o.ProjectID, "project", "leadpipe-local", "Google Cloud project id the emulators answer for")
	fs.StringVar(&o.Host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&o.Ports.Firestore, "firestore-port", o.Ports.Firestore, "Firestore emulator port (0 picks a free port)")
	fs.IntVar(&o.Ports.PubSub, "pubsub-port", o.Ports.PubSub, "Pub/Sub emulator port")
	fs.IntVar(&o.Ports.GCS, "gcs-port", o.Ports.GCS, "GCS emulator port")
	fs.IntVar(&o.Ports.Ingest, "ingest-port", o.Ports.Ingest, "ingest service port")
	fs.IntVar(&o.Ports.Processor, "processor-port", o.Ports.Processor, "processor service port")
	fs.IntVar(&o.Ports.Replayer, "replayer-port", o.Ports.Replayer, "replayer service port")
	fs.IntVar(&o.Ports.CRM, "crm-port", o.Ports.CRM, "fake CRM port")
	mode := fs.String("emulators", string(emulators.Embedded), "which emulators: embedded (in-process), google (Google's, from the Google Cloud CLI; needs Java), external (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST from the environment)")
	defLevel := "info"
	if v := os.Getenv("LOG_LEVEL"); v != "" {
		defLevel = v
	}
	level := fs.String("log-level", defLevel, "service log level: debug, info, warn, error (default $LOG_LEVEL, else info)")
	fs.StringVar(&o.SourcesFile, "sources", "", "your own sources file (ingest's SOURCES_FILE format; its env:NAME secrets come from your environment or are generated and exported); default the shipped devstack/config/sources.yaml")
	format := fs.String("log-format", defaultLogFormat(stderr), "log lines: text (readable; the default on a terminal) or json (Cloud Logging's; the default otherwise); LOG_FORMAT sets the default")
	fs.BoolVar(&o.Processes, "processes", false, "up: run ingest, processor and replayer as their own OS processes (the cmd binaries, built into the user cache directory), logging to --log-dir")
	fs.IntVar(&o.Processors, "processors", 1, "up --processes: number of processor processes, behind a round-robin proxy on --processor-port")
	fs.StringVar(&o.LogDir, "log-dir", ".devstack/logs", "up --processes: directory of the services' log files (<service>.log)")
	envOut := fs.String("env-file", ".devstack/env", "also write the export lines to this file while running (removed on exit; empty: don't)")
	if len(args) == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	cmd := args[0]
	err := fs.Parse(args[1:])
	if err != nil {
		return err
	}
	o.LogLevel = logging.ParseLevel(*level)
	if o.Emulators, err = emulators.ParseMode(*mode); err != nil {
		return err
	}
	o.LogFormat = logging.ParseFormat(*format)
	o.Logs = stderr

	var s *stack.Stack
	switch cmd {
	case "emulators":
		s, err = stack.Emulators(ctx, o)
	case "up":
		if o.Processors < 1 || o.Processors > 16 {
			return fmt.Errorf("--processors=%d: want 1..16", o.Processors)
		}
		if o.Processors > 1 && !o.Processes {
			return errors.New("--processors needs --processes")
		}
		s, err = stack.Up(ctx, o)
	case "help", "-h", "--help":
		fs.Usage()
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return err
	}
	defer s.Close()
	var exports strings.Builder
	for _, kv := range s.Exports() {
		fmt.Fprintf(&exports, "export %s=%s\n", kv[0], kv[1])
	}
	fmt.Fprint(stdout, exports.String())
	envFile := *envOut
	if envFile != "" {
		if err := writeEnvFile(envFile, exports.String()); err != nil {
			return err
		}
		defer os.Remove(envFile)
	}
	fmt.Fprintln(stdout, "devstack: ready")
	fmt.Fprintf(stderr, "\ndevstack %s is running (Ctrl-C to stop).\n", cmd)
	if cmd == "up" {
		fmt.Fprintf(stderr, "  send a lead:   make send-lead   (reads %s; or paste the export lines into your shell)\n", envFile)
		fmt.Fprintf(stderr, "  triage page:   %s/  (token: $REPLAYER_TOKEN)\n", s.ReplayerURL)
		fmt.Fprintf(stderr, "  fake CRM:      %s/_control/records\n", s.CRM.URL())
		for _, p := range s.Services() {
			fmt.Fprintf(stderr, "  %-14s pid %d at %s, log %s\n", p.Name()+":", p.PID(), p.URL(), p.LogPath())
		}
	}
	slog.Debug("running")
	<-ctx.Done()
	fmt.Fprintln(stderr, "devstack: stopping")
	return s.Err()
}

func writeEnvFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("env file: %w", err)
	}
	return nil
}

// defaultLogFormat is LOG_FORMAT when set, else text when w is a terminal, else json.
func defaultLogFormat(w io.Writer) string {
	if v := os.Getenv("LOG_FORMAT"); v != "" {
		return logging.ParseFormat(v)
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return logging.FormatText
		}
	}
	return logging.FormatJSON
}
