package txretry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	aborted  = status.Error(codes.Aborted, "Transaction lock timeout")
	deadline = status.Error(codes.DeadlineExceeded, "deadline exceeded")
	errOther = errors.New("precondition: fence moved")
)

func TestDo(t *testing.T) {
	p := Policy{Attempts: 4, Base: 10 * time.Millisecond, Max: 25 * time.Millisecond}
	tests := []struct {
		name      string
		errs      []error // what each try returns; nil after the list
		wantTries int
		wantErr   error // errors.Is target; nil for success
		wantPause []time.Duration
	}{
		{"first try succeeds", nil, 1, nil, nil},
		{"aborted then success", []error{aborted, aborted}, 3, nil, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond}},
		{"wrapped aborted is retried", []error{fmt.Errorf("claim x: %w", aborted)}, 2, nil, []time.Duration{5 * time.Millisecond}},
		{"shielded aborted is retried and revealed", []error{Shield(context.Background(), aborted), Shield(context.Background(), aborted), Shield(context.Background(), aborted), Shield(context.Background(), aborted)}, 4, aborted, nil},
		{"transaction deadline is retried", []error{deadline}, 2, nil, []time.Duration{5 * time.Millisecond}},
		{"bound reached", []error{aborted, aborted, aborted, aborted, aborted}, 4, ErrContended,
			[]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 12500 * time.Microsecond}},
		{"bound error keeps the last cause", []error{aborted, aborted, aborted, deadline}, 4, deadline, nil},
		{"other error is not retried", []error{errOther}, 1, errOther, nil},
		{"not found is not retried", []error{status.Error(codes.NotFound, "no doc")}, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			var pauses []time.Duration
			err := p.Do(context.Background(), func(context.Context) error {
				tries++
				if tries <= len(tt.errs) {
					return tt.errs[tries-1]
				}
				return nil
			}, func(_ context.Context, d time.Duration) error {
				pauses = append(pauses, d)
				return nil
			}, func() float64 { return 0.5 })
			if tries != tt.wantTries {
				t.Errorf("tries: got %d, want %d", tries, tt.wantTries)
			}
			switch {
			case tt.name == "not found is not retried":
				if status.Code(err) != codes.NotFound {
					t.Errorf("err: got %v, want NotFound", err)
				}
			case tt.wantErr == nil && err != nil:
				t.Errorf("err: got %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("err: got %v, want %v in the chain", err, tt.wantErr)
			}
			if tt.wantPause != nil && fmt.Sprint(pauses) != fmt.Sprint(tt.wantPause) {
				t.Errorf("pauses: got %v, want %v", pauses, tt.wantPause)
			}
		})
	}
}

func TestDoCallerDeadlineIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tries := 0
	err := Default.Do(ctx, func(context.Context) error { tries++; return deadline }, nil, nil)
	if tries != 1 || !errors.Is(err, deadline) || errors.Is(err, ErrContended) {
		t.Errorf("got %d tries, err %v; want 1 try and the deadline error", tries, err)
	}
}

func TestDoSleepInterrupted(t *testing.T) {
	tries := 0
	err := Default.Do(context.Background(), func(context.Context) error { tries++; return aborted },
		func(context.Context, time.Duration) error { return context.Canceled }, nil)
	if tries != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, aborted) {
		t.Errorf("got %d tries, err %v; want 1 try, canceled and aborted", tries, err)
	}
}

func TestPauseBounds(t *testing.T) {
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0.999, 19980 * time.Microsecond},
		{2, 1, 40 * time.Millisecond},
		{3, 0.5, 40 * time.Millisecond},
		{7, 1, 1000 * time.Millisecond}, // 20ms·64 = 1.28s, capped
		{50, 1, time.Second},            // no overflow
		{4, 0, 0},
	}
	for _, tt := range tests {
		if got := Default.Pause(tt.n, func() float64 { return tt.r }); got != tt.want {
			t.Errorf("Pause(%d, %v): got %v, want %v", tt.n, tt.r, got, tt.want)
		}
	}
}

func TestShieldHidesTheCodeFromTheClient(t *testing.T) {
	sh := Shield(context.Background(), fmt.Errorf("get: %w", aborted))
	if c := status.Code(sh); c == codes.Aborted {
		t.Errorf("status.Code(shielded): got %v, want anything but Aborted", c)
	}
	if _, ok := status.FromError(sh); ok {
		t.Error("status.FromError(shielded): ok, want not a status error")
	}
	if !Retryable(context.Background(), sh) {
		t.Error("Retryable(shielded): false, want true")
	}
	if got := Shield(context.Background(), errOther); got != errOther {
		t.Errorf("Shield(other): got %v, want it unchanged", got)
	}
}
