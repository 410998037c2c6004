"""Submit a sum-squares job to a concur coordinator, wait for it, print its items."""
import sys

import grpc

import concur_pb2
import concur_pb2_grpc

target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7070"
with grpc.insecure_channel(target) as channel:
    jobs = concur_pb2_grpc.JobServiceStub(channel)
    spec = concur_pb2.JobSpec(
        sum_squares=concur_pb2.SumSquaresSpec(
            range=concur_pb2.NumberRange(start=1000, end=1005)
        ),
        strategy=concur_pb2.STRATEGY_THREADS,
        concurrency=2,
    )
    job_id = jobs.SubmitJob(concur_pb2.SubmitJobRequest(spec=spec)).job_id
    for progress in jobs.WatchJob(concur_pb2.WatchJobRequest(job_id=job_id)):
        print("progress", progress.items_done, "of", progress.items_total)
    report = jobs.GetJob(concur_pb2.GetJobRequest(job_id=job_id))
    print("job", job_id, concur_pb2.JobState.Name(report.state), "ok", report.items_ok)
    for chunk in jobs.ListJobItems(concur_pb2.ListJobItemsRequest(job_id=job_id)):
        for item in chunk.items:
            value = (item.value_hi << 64) | item.value_lo
            print(item.input, item.ok, value)
