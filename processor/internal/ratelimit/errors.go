package ratelimit

import (
	"errors"

	"github.com/leadpipe/leadpipe/common/failure"
)

func asFailure(err error, fe **failure.Error) bool { return err != nil && errors.As(err, fe) }
