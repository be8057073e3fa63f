// Package asl is the embedded Amazon States Language interpreter: it loads the
// statemachines/*.asl.json files that AWS Step Functions runs and executes them durably
// on a store.Store, implementing the workflow.Engine port.
//
// Use:
//
//	m, err := asl.Load("creation", def, map[string]string{"SpawnFunctionArn": "arn:straas:function:Spawn"})
//	eng, err := asl.New(asl.Config{Store: st, Machines: map[string]*asl.Machine{"creation": m},
//		Functions: map[string]workflow.Func{"arn:straas:function:Spawn": spawn}})
//	go eng.Run(ctx) // resumes what the store holds, then runs until ctx ends
//	id, err := eng.Start(ctx, "creation", "job-42", input)
//
// Durability. An execution is a tree of threads: the root, and one per Parallel branch
// or Map iteration. Each thread has one record (KindThread) holding its current state,
// that state's input and a few counters; every transition rewrites it (conditionally
// on its version) in one store.Write, together with whatever else changes at the same
// time: the task token it creates or drops (KindToken), the children it starts or
// collects, the execution record (KindExec) when the root ends. A process may die at
// any instant; Run resumes every thread from its record. A Task whose function may or
// may not have run is run again (functions are idempotent), while a task that waits
// for a token and whose function has returned keeps waiting on the same, persisted
// token. SendTaskSuccess/Failure/Heartbeat only change the token record, so they work
// while the engine is down; the waiting thread reads the token when it resumes or is
// woken. Threads waiting for a time are indexed under store.IdxDue ("asl_timer").
//
// Resources. A Task's Resource is a function of Config.Functions (by ARN, as a Lambda
// function), or one of the integrations: lambda:invoke(.waitForTaskToken),
// states:startExecution.sync:2 (a child execution), and sqs:sendMessage(.waitForTaskToken),
// which sends Parameters.MessageBody (an object as JSON, a string as it is) through
// Config.Queue to the queue named by the last "/"-separated part of Parameters.QueueUrl
// (an SQS queue URL ends in the queue's name, so the same definition runs on Step
// Functions with the URL substituted). New refuses a machine with an sqs task when
// Config.Queue is nil.
//
// A .waitForTaskToken task's token exists before its function (or send) runs, so the
// token may be completed before the function returns, by the function itself too: the
// result is kept and taken once the return is checkpointed. A function whose process
// died before that checkpoint is not run again if its token was completed meanwhile.
//
// Start may be called at any time: before Run it only records the execution (Run
// resumes it); while Run is resuming the store it records it and Run starts it once the
// resume is over, so that no execution is driven from two copies of its records.
//
// Errors raised by task functions reach Retry and Catch under workflow.ErrorName(err)
// with err.Error() as the cause, as the Lambda Go runtime reports them.
package asl
