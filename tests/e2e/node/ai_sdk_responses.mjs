// The AI SDK's default OpenAI provider (openai(model) speaks the Responses API) through generateText and
// streamText, and a tool call. Usage: node ai_sdk_responses.mjs '{"baseURL": "...", "model": "..."}'
// Prints one JSON object: the texts and the tool calls seen.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, jsonSchema } from "ai";

const args = JSON.parse(process.argv[2]);
const openai = createOpenAI({ baseURL: args.baseURL, apiKey: "e2e-unused" });
const model = openai(args.model);

const whole = await generateText({ model, prompt: "#sim:words=5 hello", maxRetries: 0 });
const stream = streamText({ model, prompt: "#sim:words=6 hello", maxRetries: 0 });
let streamed = "";
for await (const delta of stream.textStream) streamed += delta;

const getWeather = tool({
  description: "The weather in a city.",
  inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
  execute: async ({ city }) => `sunny in ${city} #sim:tool=end_of_loop`,
});
const called = await generateText({
  model,
  prompt: '#sim:tool=get_weather #sim:args={"city": "Paris"} weather?',
  tools: { get_weather: getWeather },
  stopWhen: ({ steps }) => steps.length >= 2,
  maxRetries: 0,
});
console.log(JSON.stringify({
  text: whole.text,
  streamed,
  toolCalls: called.steps[0].toolCalls.map((c) => ({ toolName: c.toolName, input: c.input })),
  afterTool: called.text,
}));
