-- wrk script: POST /tokens/validate with a token and an API key taken from
-- the environment (TOKMESH_BENCH_TOKEN, TOKMESH_BENCH_KEY).
wrk.method = "POST"
wrk.body = '{"token":"' .. os.getenv("TOKMESH_BENCH_TOKEN") .. '"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKMESH_BENCH_KEY")
