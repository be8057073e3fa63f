//go:build !linux

package awsendpoint

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
