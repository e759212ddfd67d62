package replica

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogLogger adapts a *slog.Logger to the hclog.Logger that hashicorp/raft
// logs through. raft's Info lines (state transitions, pipelining, snapshots)
// go to slog's Debug: the node logs the events an operator wants (elections,
// membership) itself, at Info. Warnings and errors keep their level.
type slogLogger struct {
	base    *slog.Logger // without the component
	l       *slog.Logger
	name    string
	implied []any
	level   hclog.Level
}

var _ hclog.Logger = (*slogLogger)(nil)

func newHCLog(l *slog.Logger, name string) hclog.Logger {
	return &slogLogger{base: l, l: l.With("component", name), name: name, level: hclog.Trace}
}

func (s *slogLogger) slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug, hclog.Info:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if level < s.level {
		return
	}
	s.l.Log(context.Background(), s.slogLevel(level), msg, args...)
}

func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }

func (s *slogLogger) enabled(level hclog.Level) bool {
	return level >= s.level && s.l.Enabled(context.Background(), s.slogLevel(level))
}
func (s *slogLogger) IsTrace() bool { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool { return s.enabled(hclog.Error) }

func (s *slogLogger) ImpliedArgs() []any { return s.implied }

func (s *slogLogger) With(args ...any) hclog.Logger {
	return &slogLogger{base: s.base, l: s.l.With(args...), name: s.name, implied: append(append([]any{}, s.implied...), args...), level: s.level}
}

func (s *slogLogger) Name() string { return s.name }

func (s *slogLogger) Named(name string) hclog.Logger {
	if s.name != "" {
		name = s.name + "." + name
	}
	return s.ResetNamed(name)
}

func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	return &slogLogger{base: s.base, l: s.base.With("component", name).With(s.implied...), name: name, implied: s.implied, level: s.level}
}

func (s *slogLogger) SetLevel(level hclog.Level) { s.level = level }
func (s *slogLogger) GetLevel() hclog.Level      { return s.level }

func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

func (s *slogLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		s.l.Debug(string(p))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
