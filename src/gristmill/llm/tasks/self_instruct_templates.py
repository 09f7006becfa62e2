"""Few-shot prompt prefixes for Self-Instruct's classification and instance-generation steps.

They follow the *format* of the reference templates (yizhongw/self-instruct,
self_instruct/templates/): ``Task: ...`` / ``Is it classification? Yes|No`` for the
classifier, ``Task: ... / Class label: ... / <Field>: ...`` for output-first instances and
``Task: ... / Example N / <Field>: ... / Output: ...`` for input-first instances, because
the parsers depend on exactly that format. The examples themselves are written for
gristmill (the reference's are long; shorter prefixes keep prompts cheap for a small
local model). Each prefix ends with ``Task:``; the instruction is appended after a space.
"""

CLF_TEMPLATE = """Can the following task be regarded as a classification task with finite output labels?

Task: Decide whether the review below is positive or negative.
Is it classification? Yes

Task: Write a short poem about the first snow of winter.
Is it classification? No

Task: Tell me whether the number is prime.
Is it classification? Yes

Task: Summarize the paragraph in one sentence.
Is it classification? No

Task: Which of the animals in the list can fly?
Is it classification? Yes

Task: Suggest three names for a new bakery.
Is it classification? No

Task: Label the sentence as a question, a command or a statement.
Is it classification? Yes

Task: Translate the sentence into French.
Is it classification? No

Task: Is the following argument valid or invalid?
Is it classification? Yes

Task: Explain how a bicycle gear works to a child.
Is it classification? No

Task: Given a news headline, tell me if it is about sports, politics, science or business.
Is it classification? Yes

Task: Write a Python function that reverses a string.
Is it classification? No

Task: Pick the word that does not belong in the group.
Is it classification? Yes

Task: List the steps to change a flat tire.
Is it classification? No

Task: Does the email ask the reader to do something? Answer yes or no.
Is it classification? Yes

Task: Rewrite the text so that it sounds more formal.
Is it classification? No

Task:"""

OUTPUT_FIRST_TEMPLATE = """Given the classification task definition and the class labels, generate an input that corresponds to each of the class labels. If the task doesn't require input, just generate possible class labels.

Task: Decide whether the review below is positive or negative.
Class label: Positive
Review: The soup was hot, the bread was fresh and the waiter remembered our names.
Class label: Negative
Review: We waited forty minutes for a cold pizza and nobody apologized.

Task: Tell me whether the number is prime.
Class label: Yes
Number: 13
Class label: No
Number: 21

Task: Label the sentence as a question, a command or a statement.
Class label: Question
Sentence: Where did you leave the keys?
Class label: Command
Sentence: Close the window before you go.
Class label: Statement
Sentence: The library opens at nine.

Task: Pick the word that does not belong in the group.
Class label: carrot
Group: apple, pear, carrot, plum
Class label: Tuesday
Group: March, June, Tuesday, October

Task: Given a news headline, tell me if it is about sports, politics, science or business.
Class label: Science
Headline: Astronomers spot water vapour around a distant planet
Class label: Business
Headline: Local bakery chain opens its fiftieth store

Task: Which is the largest ocean on Earth?
Class label: The Pacific Ocean

Task:"""

INPUT_FIRST_TEMPLATE = """Come up with examples for the following tasks. Try to generate multiple examples when possible. If the task doesn't require additional input, you can generate the output directly.

Task: Suggest three names for a new bakery.
Output:
- Rise and Shine
- The Crusty Loaf
- Sugar and Flour

Task: Summarize the paragraph in one sentence.
Example 1
Paragraph: The town council met on Monday to discuss the new park. Residents asked for more trees and a playground, and the council agreed to add both before summer.
Output: The council agreed to add trees and a playground to the new park before summer.
Example 2
Paragraph: Heavy rain closed two roads in the valley overnight. Crews cleared the mud by morning and traffic returned to normal.
Output: Overnight rain closed two valley roads, but they reopened by morning.

Task: Convert 5 kilometers to miles.
Output: 5 kilometers is about 3.11 miles.

Task: Sort the given list of numbers from smallest to largest.
Example 1
List: [7, 2, 9, 4]
Output: [2, 4, 7, 9]
Example 2
List: [15, -3, 0, 8]
Output: [-3, 0, 8, 15]

Task: Rewrite the text so that it sounds more formal.
Example 1
Text: Hey, can you send me that report thing by tomorrow?
Output: Could you please send me the report by tomorrow?

Task: Solve the word problem and show your steps.
Example 1
Problem: A box holds 12 eggs. How many eggs are in 4 boxes?
Output: 4 x 12 = 48. There are 48 eggs.
Example 2
Problem: Sam had 30 dollars and spent 12. How much is left?
Output: 30 - 12 = 18. Sam has 18 dollars left.

Task: Write a Python function that reverses a string.
Output:
def reverse(s):
    return s[::-1]

Task:"""
