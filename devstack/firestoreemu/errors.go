package firestoreemu

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func invalidArg(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

func notFound(format string, a ...any) error { return status.Errorf(codes.NotFound, format, a...) }

func alreadyExists(format string, a ...any) error {
	return status.Errorf(codes.AlreadyExists, format, a...)
}

func failedPrecondition(format string, a ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, a...)
}

func aborted(format string, a ...any) error { return status.Errorf(codes.Aborted, format, a...) }

// errTxnExpired is what Firestore answers for a transaction id that is
// unknown, finished, or timed out.
var errTxnExpired = status.Error(codes.InvalidArgument, "The referenced transaction has expired or is no longer valid.")
