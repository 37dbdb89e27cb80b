package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/leadpipe/leadpipe/common/failure"
	"github.com/leadpipe/leadpipe/replayer/internal/reconcile"
)

func TestReconcileStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{badf("invalid JSON body"), http.StatusBadRequest},
		{fmt.Errorf("x: %w", reconcile.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("x: %w", reconcile.ErrSource), http.StatusUnprocessableEntity},
		{reconcile.ErrNotConfigured, http.StatusUnprocessableEntity},
		{fmt.Errorf("page 2: %w", failure.New(failure.Auth, 400, "meta graph token or permission")), http.StatusBadGateway},
		{fmt.Errorf("page 2: %w", &failure.Error{Class: failure.Retryable, Message: "meta graph rate limit"}), http.StatusServiceUnavailable},
		{errors.New("boom"), http.StatusInternalServerError},
	} {
		if got := reconcileStatus(tc.err); got != tc.want {
			t.Errorf("%v: got %d, want %d", tc.err, got, tc.want)
		}
	}
}
